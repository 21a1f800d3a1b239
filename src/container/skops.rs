//! skops files judged: every node of `schema.json` is judged by the rule set that judges pickle
//! globals, as what `skops.io.load` would import and construct (skops's own trust list is not
//! consulted). A zip holding `schema.json` is scanned member by member by the zip reader; this
//! analyser is what `schema.json` gets.
//!
//! * `FunctionNode`, `TypeNode`: `module.name` is imported (`os.system` is dangerous);
//! * `ObjectNode`, `ReduceNode`, …: `module.class` is instantiated;
//! * `MethodNode`: `module.class.func` is reached; a dotted `func` is refused (CVE-2025-54413);
//! * `OperatorFuncNode`: `operator.<class>` is called; a module other than `operator` is
//!   refused (CVE-2025-54412).

use super::{Ctx, Scanned};
use crate::finding::{Finding, Usage};
use crate::format::skops;
use crate::format::Format;
use crate::rules::Judgement;
use std::collections::HashSet;

/// Rule id, from the one registry ([`crate::rules::ids`]).
pub use crate::rules::ids::SKOPS_INVALID as INVALID;

/// Scan a skops `schema.json`.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let mut findings = Vec::new();
    match skops::read(data) {
        Ok(nodes) => {
            let mut seen = HashSet::new();
            for n in &nodes {
                judge(ctx, n, &mut seen, &mut findings);
            }
        }
        Err(e) => findings.push(ctx.anomaly(INVALID, Some(0), format!("skops {e}"))),
    }
    Scanned {
        format: Format::SkopsSchema,
        findings,
    }
}

fn judge(
    ctx: &Ctx<'_>,
    n: &skops::Node,
    seen: &mut HashSet<(String, String)>,
    out: &mut Vec<Finding>,
) {
    let (module, name, usage) = match n.loader.as_str() {
        "JsonNode" => return,
        "MethodNode" => {
            let func = n.func.clone().unwrap_or_default();
            if func.contains('.') || func.is_empty() {
                out.push(ctx.anomaly(
                    INVALID,
                    None,
                    format!(
                        "MethodNode at {} with method name '{func}': skops 0.12+ refuses it (CVE-2025-54413)",
                        n.path
                    ),
                ));
            }
            (
                n.module.clone(),
                format!("{}.{func}", n.class),
                Usage::Called,
            )
        }
        "OperatorFuncNode" => {
            if n.module != "operator" && n.module != "_operator" {
                out.push(ctx.anomaly(
                    INVALID,
                    None,
                    format!(
                        "OperatorFuncNode at {} names module '{}': construction calls operator.{} whatever it says (CVE-2025-54412)",
                        n.path, n.module, n.class
                    ),
                ));
            }
            ("operator".to_string(), n.class.clone(), Usage::Called)
        }
        "FunctionNode" | "TypeNode" => (n.module.clone(), n.class.clone(), Usage::Imported),
        "ReduceNode" | "ConstructorFromReduceNode" => {
            (n.module.clone(), n.class.clone(), Usage::Called)
        }
        _ => (n.module.clone(), n.class.clone(), Usage::Instantiated),
    };
    if module.is_empty() || name.is_empty() {
        out.push(ctx.anomaly(
            INVALID,
            None,
            format!("{} at {} has no module or class", n.loader, n.path),
        ));
        return;
    }
    if !seen.insert((module.clone(), name.clone())) {
        return;
    }
    let global = format!("{module}.{name}");
    match ctx.scanner.rules.judge_use(&module, &name, usage) {
        Judgement::Safe(_) => {}
        Judgement::Dangerous(r) => out.push(Finding {
            rule: r.id.clone(),
            severity: r.severity,
            global: Some(global.clone()),
            module: Some(module.clone()),
            usage,
            offset: None,
            member: None,
            call: None,
            message: format!(
                "skops {} at {} loads {global}: {}",
                n.loader, n.path, r.name
            ),
        }),
        Judgement::Unknown | Judgement::OtherUse(_) => {
            let mut f = ctx.anomaly(
                crate::scan::ids::UNKNOWN_GLOBAL,
                None,
                format!(
                    "skops {} at {} loads {global}, which is on no list",
                    n.loader, n.path
                ),
            );
            f.global = Some(global);
            f.module = Some(module.clone());
            f.usage = usage;
            out.push(f);
        }
    }
}
