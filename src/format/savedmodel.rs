//! TensorFlow SavedModel files, read with the protobuf wire reader (no TensorFlow, no schema
//! compiler), field numbers from tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
//! framework/graph.proto, node_def.proto, function.proto, attr_value.proto and tensor.proto:
//!
//! * `saved_model.pb`: `SavedModel.meta_graphs` (2) → `MetaGraphDef.graph_def` (2) →
//!   `GraphDef.node` (1) and `GraphDef.library` (2) → `FunctionDefLibrary.function` (1) →
//!   `FunctionDef.node_def` (3); every node's `op` (2), `name` (1), inputs (3) and string
//!   attributes (`attr` (5) → `AttrValue.s` (2) or `list.s`), and the string constants of `Const`
//!   nodes (`value` → `TensorProto.string_val` (8)) its inputs name;
//! * `keras_metadata.pb` (tf.keras SavedModels): `SavedMetadata.nodes` (1) → `SavedObject`
//!   `node_path` (3), `identifier` (4) and `metadata` (5), a Keras layer config as JSON;
//! * `fingerprint.pb`: recognised (`FingerprintDef`: five hashes and a version), nothing to judge.

use super::protobuf::{Fields, Value, WireError};
use std::collections::HashMap;

/// Largest file read.
pub const MAX_SIZE: usize = 2 << 30;
/// Most nodes (graph and functions together).
pub const MAX_NODES: usize = 10_000_000;
/// String attributes and constants are cut to this many bytes.
pub const MAX_STRING: usize = 4096;

/// Why a SavedModel file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedModelError {
    /// The protobuf does not decode.
    #[error("protobuf: {0}")]
    Wire(#[from] WireError),
    /// Larger than [`MAX_SIZE`] or more than [`MAX_NODES`] nodes.
    #[error("{0}")]
    Limit(String),
    /// Decodes, but not as the message it should be.
    #[error("{0}")]
    Invalid(String),
}

/// One node of the graph or of a library function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The op it runs.
    pub op: String,
    /// Its name.
    pub name: String,
    /// The library function it belongs to (`None`: the meta graph's own graph).
    pub function: Option<String>,
    /// Its string attributes (`(name, value)`; list items one by one).
    pub attrs: Vec<(String, String)>,
    /// String constants fed to it: the `string_val` of the `Const` nodes its inputs name.
    pub constants: Vec<String>,
}

/// What a `saved_model.pb` holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SavedModel {
    /// Number of meta graphs.
    pub meta_graphs: usize,
    /// Every node, graph and library.
    pub nodes: Vec<Node>,
}

/// One object of a `keras_metadata.pb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerasObject {
    /// `node_path` (`root.layer-1`).
    pub path: String,
    /// `identifier` (`_tf_keras_layer`, …).
    pub identifier: String,
    /// `metadata`: the layer's config as JSON.
    pub metadata: String,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_STRING)]).into_owned()
}

/// True when `data` decodes as a `SavedModel`: top-level fields are only the schema version
/// (1, a varint) and meta graphs (2), at least one meta graph, each of whose fields has the wire
/// type `MetaGraphDef` gives it.
pub fn looks_like(data: &[u8]) -> bool {
    if data.len() < 4 || data.len() > MAX_SIZE {
        return false;
    }
    let mut graphs = 0;
    let mut version = false;
    for f in Fields::new(data, 0) {
        match f {
            Ok((1, Value::Varint(v), _)) if v <= 16 => version = true,
            Ok((2, Value::Len(m), _)) => {
                if !meta_graph_shape(m) {
                    return false;
                }
                graphs += 1;
            }
            // A model cut short after its schema version: read (and reported) as one.
            Err(_) => return version && data.get(2) == Some(&0x12),
            _ => return false,
        }
    }
    graphs > 0
}

fn meta_graph_shape(m: &[u8]) -> bool {
    Fields::new(m, 0).all(|f| matches!(f, Ok((1..=7, Value::Len(_), _))))
}

/// Read a `saved_model.pb`.
pub fn read(data: &[u8]) -> Result<SavedModel, SavedModelError> {
    if data.len() > MAX_SIZE {
        return Err(SavedModelError::Limit(format!(
            "{} bytes (at most {MAX_SIZE})",
            data.len()
        )));
    }
    let mut out = SavedModel::default();
    for f in Fields::new(data, 0) {
        let (field, v, at) = f?;
        if let (2, Value::Len(meta)) = (field, v) {
            out.meta_graphs += 1;
            for g in Fields::new(meta, at) {
                let (field, v, at) = g?;
                if let (2, Value::Len(graph)) = (field, v) {
                    read_graph(graph, at, &mut out.nodes)?;
                }
            }
        }
    }
    if out.meta_graphs == 0 {
        return Err(SavedModelError::Invalid("no meta graph".into()));
    }
    Ok(out)
}

fn read_graph(graph: &[u8], base: usize, nodes: &mut Vec<Node>) -> Result<(), SavedModelError> {
    let mut own = Vec::new();
    for f in Fields::new(graph, base) {
        let (field, v, at) = f?;
        match (field, v) {
            (1, Value::Len(n)) => own.push(read_node(n, at, None)?),
            (2, Value::Len(library)) => {
                for l in Fields::new(library, at) {
                    let (field, v, at) = l?;
                    if let (1, Value::Len(function)) = (field, v) {
                        read_function(function, at, nodes)?;
                    }
                }
            }
            _ => {}
        }
        check_count(nodes.len() + own.len())?;
    }
    link_constants(&mut own);
    nodes.extend(own);
    Ok(())
}

fn check_count(n: usize) -> Result<(), SavedModelError> {
    if n > MAX_NODES {
        return Err(SavedModelError::Limit(format!(
            "more than {MAX_NODES} nodes"
        )));
    }
    Ok(())
}

fn read_function(
    function: &[u8],
    base: usize,
    nodes: &mut Vec<Node>,
) -> Result<(), SavedModelError> {
    let mut name = String::new();
    let mut own = Vec::new();
    for f in Fields::new(function, base) {
        let (field, v, at) = f?;
        match (field, v) {
            // OpDef signature: its name (1) is the function's.
            (1, Value::Len(sig)) => {
                for s in Fields::new(sig, at) {
                    if let (1, Value::Len(n), _) = s? {
                        name = text(n);
                    }
                }
            }
            (3, Value::Len(n)) => own.push(read_node(n, at, None)?),
            _ => {}
        }
        check_count(nodes.len() + own.len())?;
    }
    for n in &mut own {
        n.function = Some(name.clone());
    }
    link_constants(&mut own);
    nodes.extend(own);
    Ok(())
}

/// A node, with its inputs kept in `constants` until [`link_constants`] resolves them.
fn read_node(node: &[u8], base: usize, function: Option<String>) -> Result<Node, SavedModelError> {
    let mut n = Node {
        function,
        ..Default::default()
    };
    for f in Fields::new(node, base) {
        let (field, v, at) = f?;
        match (field, v) {
            (1, Value::Len(b)) => n.name = text(b),
            (2, Value::Len(b)) => n.op = text(b),
            (3, Value::Len(b)) => n.constants.push(text(b)),
            (5, Value::Len(entry)) => read_attr(entry, at, &mut n.attrs)?,
            _ => {}
        }
    }
    Ok(n)
}

/// One `map<string, AttrValue>` entry: the string values it holds, and a `Const`'s string
/// tensor (`value.tensor.string_val`).
fn read_attr(
    entry: &[u8],
    base: usize,
    attrs: &mut Vec<(String, String)>,
) -> Result<(), SavedModelError> {
    let mut key = String::new();
    let mut strings = Vec::new();
    for f in Fields::new(entry, base) {
        let (field, v, at) = f?;
        match (field, v) {
            (1, Value::Len(k)) => key = text(k),
            (2, Value::Len(value)) => {
                for a in Fields::new(value, at) {
                    let (field, v, at) = a?;
                    match (field, v) {
                        (2, Value::Len(s)) => strings.push(text(s)),
                        // list: its strings (2).
                        (1, Value::Len(list)) => {
                            for l in Fields::new(list, at) {
                                if let (2, Value::Len(s), _) = l? {
                                    strings.push(text(s));
                                }
                            }
                        }
                        // tensor: string_val (8).
                        (8, Value::Len(tensor)) => {
                            for t in Fields::new(tensor, at) {
                                if let (8, Value::Len(s), _) = t? {
                                    strings.push(text(s));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    attrs.extend(strings.into_iter().map(|s| (key.clone(), s)));
    Ok(())
}

/// Replace each node's input names (held in `constants` while reading) by the string values of
/// the `Const` nodes they name, in the same graph or function.
fn link_constants(nodes: &mut [Node]) {
    let consts: HashMap<String, Vec<String>> = nodes
        .iter()
        .filter(|n| n.op == "Const")
        .map(|n| {
            let vals = n
                .attrs
                .iter()
                .filter(|(k, _)| k == "value")
                .map(|(_, v)| v.clone())
                .collect();
            (n.name.clone(), vals)
        })
        .collect();
    for n in nodes.iter_mut() {
        let inputs = std::mem::take(&mut n.constants);
        for i in inputs {
            let name = i.trim_start_matches('^');
            let name = name.split(':').next().unwrap_or(name);
            if let Some(v) = consts.get(name) {
                n.constants.extend(v.iter().cloned());
            }
        }
    }
}

/// True when `data` decodes as a `SavedMetadata` (`keras_metadata.pb`): only repeated field 1,
/// each a `SavedObject` of varint and string fields 2–6 with a `metadata` string.
pub fn looks_like_keras_metadata(data: &[u8]) -> bool {
    if data.len() < 4 || data.len() > MAX_SIZE {
        return false;
    }
    let mut objects = 0;
    for f in Fields::new(data, 0) {
        match f {
            Ok((1, Value::Len(o), _)) => {
                let mut has_metadata = false;
                for g in Fields::new(o, 0) {
                    match g {
                        Ok((2, Value::Varint(_), _)) | Ok((3 | 4 | 6, Value::Len(_), _)) => {}
                        Ok((5, Value::Len(_), _)) => has_metadata = true,
                        _ => return false,
                    }
                }
                if !has_metadata {
                    return false;
                }
                objects += 1;
            }
            _ => return false,
        }
    }
    objects > 0
}

/// The objects of a `keras_metadata.pb`.
pub fn keras_metadata(data: &[u8]) -> Result<Vec<KerasObject>, SavedModelError> {
    let mut out = Vec::new();
    for f in Fields::new(data, 0) {
        let (field, v, at) = f?;
        if let (1, Value::Len(o)) = (field, v) {
            let mut obj = KerasObject {
                path: String::new(),
                identifier: String::new(),
                metadata: String::new(),
            };
            for g in Fields::new(o, at) {
                match g? {
                    (3, Value::Len(b), _) => obj.path = text(b),
                    (4, Value::Len(b), _) => obj.identifier = text(b),
                    // The whole JSON: cutting it would make it unparsable.
                    (5, Value::Len(b), _) => obj.metadata = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            out.push(obj);
        }
        check_count(out.len())?;
    }
    Ok(out)
}

/// True when `data` is a `FingerprintDef` (`fingerprint.pb`): varint hashes in fields 1–5, a
/// `VersionDef` (6) and a UUID string (7), nothing else.
pub fn looks_like_fingerprint(data: &[u8]) -> bool {
    if data.is_empty() || data.len() > 4096 {
        return false;
    }
    let mut hashes = 0;
    for f in Fields::new(data, 0) {
        match f {
            Ok((1..=5, Value::Varint(_), _)) => hashes += 1,
            Ok((6 | 7, Value::Len(_), _)) => {}
            _ => return false,
        }
    }
    hashes >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((n << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn reads_ops_and_constant_arguments() {
        // Const "path" holding "/etc/passwd", ReadFile fed by it, in the graph.
        let tensor = field(8, b"/etc/passwd");
        let attr_value = field(8, &tensor);
        let entry = [field(1, b"value"), field(2, &attr_value)].concat();
        let konst = [field(1, b"path"), field(2, b"Const"), field(5, &entry)].concat();
        let reader = [field(1, b"r"), field(2, b"ReadFile"), field(3, b"path:0")].concat();
        let graph = [field(1, &konst), field(1, &reader)].concat();
        let meta = field(2, &graph);
        let model = [vec![0x08, 0x01], field(2, &meta)].concat();
        assert!(looks_like(&model));
        let m = read(&model).unwrap();
        let r = m.nodes.iter().find(|n| n.op == "ReadFile").unwrap();
        assert_eq!(r.constants, vec!["/etc/passwd".to_string()]);
    }

    #[test]
    fn truncated_is_an_error() {
        let model = [0x08, 0x01, 0x12, 0x40, 0x0a];
        assert!(read(&model).is_err());
        assert!(looks_like(&model), "cut short, still a SavedModel");
        assert!(!looks_like(&[0x08, 0x01, 0x1a, 0x40, 0x0a]));
    }
}
