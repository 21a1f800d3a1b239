//! skops `schema.json` (skops 0.10–0.16, protocol 1–2): the tree of nodes `skops.io.load`
//! constructs. Every JSON object with a `__loader__` key is a node naming `__module__` and
//! `__class__`; this reader lists them with their loader and path, never importing anything.

use serde_json::Value;

/// Largest `schema.json` read.
pub const MAX_SCHEMA: usize = 64 << 20;
/// Most nodes.
pub const MAX_NODES: usize = 1_000_000;

/// Why a schema could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkopsError {
    /// Larger than [`MAX_SCHEMA`].
    #[error("schema.json of {0} bytes is larger than the limit")]
    TooLarge(usize),
    /// Not JSON (serde_json also refuses nesting deeper than 128).
    #[error("schema.json does not parse: {0}")]
    Json(String),
    /// More than [`MAX_NODES`] nodes.
    #[error("more than {MAX_NODES} nodes")]
    TooManyNodes,
    /// The top level is not a node.
    #[error("the top level of schema.json is not a skops node")]
    NotSkops,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `__loader__` (`ObjectNode`, `FunctionNode`, `MethodNode`, …).
    pub loader: String,
    /// `__module__`.
    pub module: String,
    /// `__class__` (for a FunctionNode, the function's name).
    pub class: String,
    /// For a MethodNode, `content.func`.
    pub func: Option<String>,
    /// JSON path of the node (`/content/steps/content/0`).
    pub path: String,
}

/// True when `data` looks like a skops schema: a JSON object whose first key is one of the node
/// keys skops writes first (`__class__`), with a `__loader__` (a schema cut short still counts:
/// its reader then reports the cut).
pub fn looks_like(data: &[u8]) -> bool {
    let d = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let Some(start) = d.iter().position(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    let rest = &d[start..];
    if !rest.starts_with(b"{") || data.len() > MAX_SCHEMA {
        return false;
    }
    let after = rest[1..]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|p| &rest[1 + p..]);
    let first_key = after.is_some_and(|a| {
        a.starts_with(b"\"__class__\"")
            || a.starts_with(b"\"__module__\"")
            || a.starts_with(b"\"__loader__\"")
    });
    first_key && memchr::memmem::find(data, b"\"__loader__\"").is_some()
}

/// Read the nodes of a schema.
pub fn read(data: &[u8]) -> Result<Vec<Node>, SkopsError> {
    if data.len() > MAX_SCHEMA {
        return Err(SkopsError::TooLarge(data.len()));
    }
    let v: Value = serde_json::from_slice(data).map_err(|e| SkopsError::Json(e.to_string()))?;
    if v.get("__loader__").is_none() {
        return Err(SkopsError::NotSkops);
    }
    let mut out = Vec::new();
    walk(&v, String::new(), &mut out)?;
    Ok(out)
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn walk(v: &Value, path: String, out: &mut Vec<Node>) -> Result<(), SkopsError> {
    match v {
        Value::Object(m) => {
            if let Some(loader) = m.get("__loader__").and_then(Value::as_str) {
                if out.len() >= MAX_NODES {
                    return Err(SkopsError::TooManyNodes);
                }
                let func = (loader == "MethodNode")
                    .then(|| v.get("content").map(|c| str_of(c, "func")))
                    .flatten();
                out.push(Node {
                    loader: loader.to_string(),
                    module: str_of(v, "__module__"),
                    class: str_of(v, "__class__"),
                    func,
                    path: if path.is_empty() {
                        "/".into()
                    } else {
                        path.clone()
                    },
                });
                // A JsonNode's content is JSON text: data, never nodes.
                if loader == "JsonNode" {
                    return Ok(());
                }
            }
            for (k, child) in m {
                walk(child, format!("{path}/{k}"), out)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{path}/{i}"), out)?;
            }
        }
        _ => {}
    }
    Ok(())
}
