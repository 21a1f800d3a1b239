//! PMML documents (XML, DMG PMML 1.1–4.4): read with `quick-xml`, which never resolves DTDs or
//! entities. The DOCTYPE's text is parsed here for its external identifier and its entity
//! declarations; entity references in text and attributes are counted, never expanded.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Largest document read.
pub const MAX_DOCUMENT: usize = 256 << 20;
/// Largest DOCTYPE (internal subset included).
pub const MAX_DOCTYPE: usize = 1 << 20;
/// Most entity declarations.
pub const MAX_ENTITIES: usize = 100;
/// Deepest element nesting.
pub const MAX_DEPTH: usize = 256;
/// Most `Extension` texts kept.
const MAX_EXTENSIONS: usize = 10_000;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PmmlError {
    /// Larger than [`MAX_DOCUMENT`].
    #[error("document of {0} bytes is larger than the limit")]
    TooLarge(usize),
    /// The XML is not well-formed.
    #[error("not well-formed XML at byte {at}: {message}")]
    Xml {
        /// Byte offset.
        at: u64,
        /// What quick-xml says.
        message: String,
    },
    /// The DOCTYPE is larger than [`MAX_DOCTYPE`].
    #[error("DOCTYPE of {0} bytes is larger than the limit")]
    DoctypeTooLarge(usize),
    /// More than [`MAX_ENTITIES`] entity declarations.
    #[error("more than {MAX_ENTITIES} entity declarations")]
    TooManyEntities,
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// The root element is not `PMML`.
    #[error("root element is `{0}`, not PMML")]
    NotPmml(String),
}

/// One `<!ENTITY>` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Name.
    pub name: String,
    /// A parameter entity (`<!ENTITY % name …>`).
    pub parameter: bool,
    /// `SYSTEM "uri"` or `PUBLIC "id" "uri"`: the URI (or public id when no URI).
    pub external: Option<String>,
    /// The literal value of an internal entity.
    pub value: String,
}

/// The DOCTYPE declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doctype {
    /// Root name it declares.
    pub root: String,
    /// External DTD: `(public id, system uri)`.
    pub external: Option<(Option<String>, String)>,
    /// Entity declarations of the internal subset.
    pub entities: Vec<Entity>,
    /// Parameter-entity references (`%name;`) in the internal subset.
    pub parameter_refs: Vec<String>,
}

/// What a scan needs from a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pmml {
    /// The DOCTYPE, if any.
    pub doctype: Option<Doctype>,
    /// `version` of the root element.
    pub version: Option<String>,
    /// `Application` name in the header.
    pub application: Option<String>,
    /// Entity references in text and attribute values, by name (character references excluded).
    pub references: Vec<(String, u64)>,
    /// Text and attribute values inside `Extension` elements, with their offsets.
    pub extensions: Vec<(u64, String)>,
    /// Elements read.
    pub elements: u64,
}

/// True when `data` is XML whose first element is `PMML`.
pub fn looks_like(data: &[u8]) -> bool {
    let d = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let start = d.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else { return false };
    if d[start] != b'<' {
        return false;
    }
    let head = &d[start..d.len().min(start + MAX_DOCTYPE + 4096)];
    // The first element (after the declaration, comments and DOCTYPE) is PMML.
    memchr::memmem::find(head, b"<PMML").is_some()
        && !head
            .windows(2)
            .take_while(|w| *w != b"<P")
            .any(|w| w[0] == b'<' && w[1].is_ascii_alphabetic())
}

/// Read a document.
pub fn read(data: &[u8]) -> Result<Pmml, PmmlError> {
    if data.len() > MAX_DOCUMENT {
        return Err(PmmlError::TooLarge(data.len()));
    }
    let mut reader = Reader::from_reader(data);
    reader.config_mut().check_end_names = true;
    let mut out = Pmml::default();
    let mut depth = 0usize;
    let mut in_extension = 0usize;
    let mut seen_root = false;
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| PmmlError::Xml {
                at: reader.error_position(),
                message: e.to_string(),
            })?;
        match ev {
            Event::Eof => break,
            Event::DocType(t) => {
                let raw: &[u8] = t.as_ref();
                if raw.len() > MAX_DOCTYPE {
                    return Err(PmmlError::DoctypeTooLarge(raw.len()));
                }
                out.doctype = Some(parse_doctype(&String::from_utf8_lossy(raw))?);
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                out.elements += 1;
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if !seen_root {
                    seen_root = true;
                    if name != "PMML" {
                        return Err(PmmlError::NotPmml(name));
                    }
                }
                let empty = matches!(ev, Event::Empty(_));
                for a in e.attributes().with_checks(false).flatten() {
                    let raw = String::from_utf8_lossy(&a.value).into_owned();
                    collect_refs(&raw, at, &mut out.references);
                    let key = a.key.local_name();
                    if name == "PMML" && key.as_ref() == b"version" {
                        out.version = Some(raw.clone());
                    }
                    if name == "Application" && key.as_ref() == b"name" {
                        out.application = Some(raw.clone());
                    }
                    if (in_extension > 0 || name == "Extension")
                        && out.extensions.len() < MAX_EXTENSIONS
                    {
                        out.extensions.push((at, raw));
                    }
                }
                if !empty {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(PmmlError::TooDeep);
                    }
                    if name == "Extension" || in_extension > 0 {
                        in_extension += 1;
                    }
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_extension = in_extension.saturating_sub(1);
            }
            Event::Text(t) if in_extension > 0 && out.extensions.len() < MAX_EXTENSIONS => {
                let b: &[u8] = t.as_ref();
                out.extensions
                    .push((at, String::from_utf8_lossy(b).into_owned()));
            }
            Event::CData(t) if in_extension > 0 && out.extensions.len() < MAX_EXTENSIONS => {
                let b: &[u8] = t.as_ref();
                out.extensions
                    .push((at, String::from_utf8_lossy(b).into_owned()));
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                if !name.starts_with('#') {
                    out.references.push((name, at));
                }
            }
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(PmmlError::NotPmml(String::new()));
    }
    Ok(out)
}

/// `&name;` references in an attribute's raw value.
fn collect_refs(raw: &str, at: u64, out: &mut Vec<(String, u64)>) {
    let mut rest = raw;
    while let Some(p) = rest.find('&') {
        let after = &rest[p + 1..];
        match after.find(';') {
            Some(end) => {
                let name = &after[..end];
                if !name.starts_with('#') && out.len() < 1_000_000 {
                    out.push((name.to_string(), at));
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn word(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len()
            && !self.s[self.i].is_ascii_whitespace()
            && !matches!(self.s[self.i], b'[' | b'>' | b'"' | b'\'')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'"' && q != b'\'' {
            return None;
        }
        let start = self.i + 1;
        let end = self.s[start..].iter().position(|&b| b == q)? + start;
        self.i = end + 1;
        Some(String::from_utf8_lossy(&self.s[start..end]).into_owned())
    }
    fn starts(&self, p: &[u8]) -> bool {
        self.s[self.i..].starts_with(p)
    }
    /// `SYSTEM "uri"` or `PUBLIC "id" "uri"`.
    fn external_id(&mut self) -> Option<(Option<String>, String)> {
        self.ws();
        if self.starts(b"SYSTEM") {
            self.i += 6;
            return Some((None, self.quoted().unwrap_or_default()));
        }
        if self.starts(b"PUBLIC") {
            self.i += 6;
            let id = self.quoted();
            let save = self.i;
            let uri = match self.quoted() {
                Some(u) => u,
                None => {
                    self.i = save;
                    String::new()
                }
            };
            return Some((id, uri));
        }
        None
    }
    /// Skip to just after the next unquoted `>`.
    fn skip_decl(&mut self) {
        let mut q = None;
        while self.i < self.s.len() {
            let b = self.s[self.i];
            self.i += 1;
            match q {
                Some(c) if b == c => q = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => q = Some(b),
                None if b == b'>' => return,
                None => {}
            }
        }
    }
}

/// Parse the text quick-xml gives for `<!DOCTYPE …>` (without the keyword and the final `>`).
pub fn parse_doctype(text: &str) -> Result<Doctype, PmmlError> {
    let mut c = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let mut d = Doctype::default();
    c.ws();
    d.root = c.word();
    d.external = c.external_id();
    c.ws();
    if !c.starts(b"[") {
        return Ok(d);
    }
    c.i += 1;
    while c.i < c.s.len() {
        c.ws();
        if c.i >= c.s.len() || c.starts(b"]") {
            break;
        }
        if c.starts(b"<!--") {
            match text[c.i..].find("-->") {
                Some(e) => c.i += e + 3,
                None => break,
            }
        } else if c.starts(b"<!ENTITY") {
            c.i += 8;
            c.ws();
            let parameter = c.starts(b"%");
            if parameter {
                c.i += 1;
                c.ws();
            }
            let name = c.word();
            let save = c.i;
            let external = c.external_id().map(|(id, uri)| {
                if uri.is_empty() {
                    id.unwrap_or_default()
                } else {
                    uri
                }
            });
            if external.is_none() {
                c.i = save;
            }
            let value = if external.is_none() {
                c.quoted().unwrap_or_default()
            } else {
                String::new()
            };
            c.skip_decl();
            if d.entities.len() >= MAX_ENTITIES {
                return Err(PmmlError::TooManyEntities);
            }
            d.entities.push(Entity {
                name,
                parameter,
                external,
                value,
            });
        } else if c.starts(b"%") {
            c.i += 1;
            let end = text[c.i..].find(';').map(|e| c.i + e).unwrap_or(c.s.len());
            d.parameter_refs.push(text[c.i..end].to_string());
            c.i = (end + 1).min(c.s.len());
        } else if c.starts(b"<") {
            c.skip_decl();
        } else {
            c.i += 1;
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctype_entities() {
        let d = parse_doctype(
            r#"PMML [ <!-- c --> <!ENTITY x SYSTEM "file:///etc/passwd"> <!ENTITY % p PUBLIC "id" "http://h/x.dtd"> %p; <!ENTITY lol "lol&lol1;"> <!ELEMENT a (#PCDATA)> ]"#,
        )
        .unwrap();
        assert_eq!(d.root, "PMML");
        assert_eq!(d.entities.len(), 3);
        assert_eq!(
            d.entities[0].external.as_deref(),
            Some("file:///etc/passwd")
        );
        assert!(d.entities[1].parameter);
        assert_eq!(d.entities[1].external.as_deref(), Some("http://h/x.dtd"));
        assert_eq!(d.entities[2].value, "lol&lol1;");
        assert_eq!(d.parameter_refs, vec!["p".to_string()]);
        let d = parse_doctype(r#"PMML PUBLIC "PMML 2.0" "http://www.dmg.org/v2-0/pmml_v2_0.dtd""#)
            .unwrap();
        assert_eq!(
            d.external,
            Some((
                Some("PMML 2.0".into()),
                "http://www.dmg.org/v2-0/pmml_v2_0.dtd".into()
            ))
        );
    }

    #[test]
    fn detect() {
        assert!(looks_like(
            b"<?xml version='1.0'?>\n<!-- x --><PMML version='4.4'/>"
        ));
        assert!(!looks_like(b"<?xml version='1.0'?><html><PMML/></html>"));
        assert!(!looks_like(b"{}"));
    }
}
