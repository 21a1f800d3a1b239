//! PMML documents judged: external entities and DTDs (XXE, SSRF), entity-expansion bombs,
//! undeclared entities, code-like `Extension` content. The reader is [`crate::format::pmml`].
//!
//! The PMML 1.x/2.0 DOCTYPE that names DMG's own DTD is what those versions were written with,
//! and is clean (with an info finding); any other external DTD or entity is dangerous.

use super::{Ctx, Scanned};
use crate::finding::Finding;
use crate::format::pmml::{self, Doctype};
use crate::format::Format;
use std::collections::HashMap;

/// Rule ids of PMML findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{
        PMML_ENTITY_EXPANSION as ENTITY_EXPANSION, PMML_EXTERNAL_ENTITY as EXTERNAL_ENTITY,
        PMML_INVALID as INVALID, PMML_SCRIPT_EXTENSION as SCRIPT_EXTENSION,
    };
}

/// Largest estimated expansion of one entity, in bytes.
const MAX_EXPANSION: u64 = 1 << 20;
/// Deepest nesting of entity references in entity values.
const MAX_NESTING: usize = 4;

const PREDEFINED: &[&str] = &["amp", "lt", "gt", "quot", "apos"];

/// Text that looks like code in an `Extension`.
const CODE_MARKERS: &[&str] = &[
    "<script",
    "__import__",
    "os.system",
    "subprocess",
    "eval(",
    "exec(",
    "Runtime.getRuntime",
    "ProcessBuilder",
];

fn dmg_dtd(public: Option<&str>, uri: &str) -> bool {
    let u = uri.to_ascii_lowercase();
    let dmg = (u.starts_with("http://www.dmg.org/") || u.starts_with("https://www.dmg.org/"))
        && u.ends_with(".dtd")
        && u.contains("pmml");
    dmg || (u.is_empty() && public.is_some_and(|p| p.starts_with("PMML ")))
}

/// Estimated expansion of each internal entity (bytes) and its nesting depth; `None` for a
/// cycle or unknown reference.
fn expansion(d: &Doctype) -> HashMap<&str, (u64, usize)> {
    let mut out: HashMap<&str, (u64, usize)> = HashMap::new();
    // Entities may refer only to earlier ones in practice; iterate to a fixpoint (bounded).
    for _ in 0..=d.entities.len() {
        let mut changed = false;
        for e in d
            .entities
            .iter()
            .filter(|e| e.external.is_none() && !e.parameter)
        {
            let mut size = 0u64;
            let mut depth = 0usize;
            let mut rest = e.value.as_str();
            let mut literal = 0u64;
            let mut ok = true;
            while let Some(p) = rest.find('&') {
                literal += p as u64;
                let after = &rest[p + 1..];
                let Some(end) = after.find(';') else { break };
                let name = &after[..end];
                if !name.starts_with('#') && !PREDEFINED.contains(&name) {
                    match out.get(name) {
                        Some(&(s, dd)) => {
                            size = size.saturating_add(s);
                            depth = depth.max(dd + 1);
                        }
                        None => ok = false,
                    }
                }
                rest = &after[end + 1..];
            }
            literal += rest.len() as u64;
            if ok {
                let v = (size.saturating_add(literal), depth);
                if out.get(e.name.as_str()) != Some(&v) {
                    out.insert(&e.name, v);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    out
}

/// Scan a PMML document.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let mut findings = Vec::new();
    match pmml::read(data) {
        Ok(doc) => judge(ctx, &doc, &mut findings),
        Err(e) => {
            // Entities declared before the error still count: a DOCTYPE alone can be the attack.
            if let Some(doc) = doctype_only(data) {
                judge_doctype(ctx, &doc, &mut findings);
            }
            findings.push(ctx.anomaly(ids::INVALID, Some(0), format!("PMML cannot be read: {e}")))
        }
    }
    Scanned {
        format: Format::Pmml,
        findings,
    }
}

fn doctype_only(data: &[u8]) -> Option<Doctype> {
    let text = std::str::from_utf8(&data[..data.len().min(pmml::MAX_DOCTYPE + 4096)]).ok()?;
    let start = text.find("<!DOCTYPE")? + 9;
    pmml::parse_doctype(&text[start..]).ok()
}

fn judge_doctype(ctx: &Ctx<'_>, d: &Doctype, out: &mut Vec<Finding>) -> HashMap<String, u64> {
    if let Some((public, uri)) = &d.external {
        if !dmg_dtd(public.as_deref(), uri) {
            out.push(ctx.anomaly(
                ids::EXTERNAL_ENTITY,
                Some(0),
                format!("DOCTYPE loads the external DTD '{uri}': a resolving parser fetches it"),
            ));
        }
    }
    for e in &d.entities {
        if let Some(uri) = &e.external {
            out.push(ctx.anomaly(
                ids::EXTERNAL_ENTITY,
                Some(0),
                format!(
                    "{}entity '{}' is external ('{uri}'): a resolving parser reads that file or URL into the document",
                    if e.parameter { "parameter " } else { "" },
                    e.name
                ),
            ));
        } else if e.parameter {
            out.push(ctx.anomaly(
                ids::EXTERNAL_ENTITY,
                Some(0),
                format!(
                    "parameter entity '{}': declarations built at parse time",
                    e.name
                ),
            ));
        }
    }
    for r in &d.parameter_refs {
        if !d.entities.iter().any(|e| e.parameter && e.name == *r) {
            out.push(ctx.anomaly(
                ids::INVALID,
                Some(0),
                format!("parameter entity reference %{r}; is not declared"),
            ));
        }
    }
    let sizes = expansion(d);
    let mut known = HashMap::new();
    for e in d
        .entities
        .iter()
        .filter(|e| e.external.is_none() && !e.parameter)
    {
        match sizes.get(e.name.as_str()) {
            Some(&(size, depth)) => {
                if size > MAX_EXPANSION || depth > MAX_NESTING {
                    out.push(ctx.anomaly(
                        ids::ENTITY_EXPANSION,
                        Some(0),
                        format!(
                            "entity '{}' expands to about {size} bytes through {depth} levels of nested entities (limits {MAX_EXPANSION} bytes, {MAX_NESTING} levels): an expansion bomb",
                            e.name
                        ),
                    ));
                }
                known.insert(e.name.clone(), size);
            }
            None => out.push(ctx.anomaly(
                ids::INVALID,
                Some(0),
                format!(
                    "entity '{}' refers to an undeclared or cyclic entity",
                    e.name
                ),
            )),
        }
    }
    known
}

fn judge(ctx: &Ctx<'_>, doc: &pmml::Pmml, out: &mut Vec<Finding>) {
    let mut sizes = HashMap::new();
    if let Some(d) = &doc.doctype {
        sizes = judge_doctype(ctx, d, out);
        if let Some((public, uri)) = &d.external {
            if dmg_dtd(public.as_deref(), uri) && d.entities.is_empty() {
                out.push(crate::Finding::anomaly(
                    ids::INVALID,
                    crate::Severity::Info,
                    Some(0),
                    format!("DOCTYPE names DMG's PMML DTD ('{uri}'), as PMML 1.x/2.0 documents do; it is not needed to read the file"),
                ));
            }
        }
    }
    let mut total = 0u64;
    let mut undeclared = 0usize;
    for (name, at) in &doc.references {
        if PREDEFINED.contains(&name.as_str()) {
            continue;
        }
        match sizes.get(name) {
            Some(s) => total = total.saturating_add(*s),
            None => {
                let external = doc
                    .doctype
                    .as_ref()
                    .is_some_and(|d| d.entities.iter().any(|e| e.name == *name));
                if !external && undeclared < 10 {
                    undeclared += 1;
                    out.push(ctx.anomaly(
                        ids::INVALID,
                        Some(*at),
                        format!("reference to the undeclared entity &{name};"),
                    ));
                }
            }
        }
    }
    if total > MAX_EXPANSION {
        out.push(ctx.anomaly(
            ids::ENTITY_EXPANSION,
            Some(0),
            format!("entity references in the document expand to about {total} bytes (limit {MAX_EXPANSION})"),
        ));
    }
    for (at, text) in &doc.extensions {
        if let Some(m) = CODE_MARKERS.iter().find(|m| text.contains(**m)) {
            out.push(ctx.anomaly(
                ids::SCRIPT_EXTENSION,
                Some(*at),
                format!("Extension content looks like code (`{m}`); PMML consumers do not run it, a custom one might"),
            ));
            break;
        }
    }
}
