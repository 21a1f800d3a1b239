//! ONNX models (`onnx/onnx.proto3`, IR version 14): the parts a scanner needs, read from the
//! protobuf wire format without a schema compiler and without copying tensor data.
//!
//! Walked: `ModelProto` → `graph`, `training_info` (both graphs), `functions`; `GraphProto` →
//! nodes, initializers, sparse initializers; `NodeProto` → domain, op type, attributes, and the
//! subgraphs and tensors attributes hold (`If`, `Loop`, `Scan`, `Constant`). Every tensor's
//! `external_data` entries are collected with the tensor's name. Limits: nesting depth, node
//! count, string lengths; exceeding one is an error, never unbounded work.

use super::protobuf::{Fields, Value, WireError};

/// Deepest message nesting (graphs in attributes in nodes in graphs…); protobuf-C++ uses 100.
pub const MAX_DEPTH: usize = 100;
/// Most nodes in a model, all graphs and functions together.
pub const MAX_NODES: usize = 10_000_000;
/// Most external-data entries kept.
pub const MAX_EXTERNAL: usize = 1_000_000;
/// Longest name or attribute string kept (longer ones are cut).
const MAX_STRING: usize = 4096;

/// Why a model could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnnxError {
    /// The protobuf does not decode.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("messages nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// More than [`MAX_NODES`] nodes.
    #[error("more than {MAX_NODES} nodes")]
    TooManyNodes,
    /// More than [`MAX_EXTERNAL`] external-data tensors.
    #[error("more than {MAX_EXTERNAL} tensors with external data")]
    TooManyExternal,
    /// Not an ONNX model (no graph).
    #[error("no graph: not an ONNX model")]
    NoGraph,
}

/// One operator use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Operator domain (`""` is the default ONNX domain).
    pub domain: String,
    /// Operator type.
    pub op_type: String,
    /// Node name.
    pub name: String,
    /// String attributes (`s`), for the operators whose attributes name code (`PyOp`).
    pub string_attrs: Vec<(String, String)>,
    /// File offset of the node message.
    pub offset: usize,
}

/// A tensor whose data lives in another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// Tensor name.
    pub tensor: String,
    /// `external_data` entries in file order (`location`, `offset`, `length`, `checksum`, …).
    pub entries: Vec<(String, String)>,
    /// `data_location` (1 = EXTERNAL).
    pub data_location: u64,
    /// File offset of the tensor message.
    pub offset: usize,
}

/// What a model holds, as far as a scan is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// `ir_version`.
    pub ir_version: u64,
    /// `producer_name`.
    pub producer: String,
    /// Opset imports: `(domain, version)`.
    pub opsets: Vec<(String, u64)>,
    /// Every node of every graph, subgraph and function.
    pub nodes: Vec<Node>,
    /// Number of nodes seen (equals `nodes.len()`).
    pub node_count: usize,
    /// Every tensor with external data.
    pub external: Vec<External>,
    /// Number of initializers seen.
    pub initializers: usize,
    /// Domains of model-local functions.
    pub function_domains: Vec<(String, String)>,
}

fn text(b: &[u8]) -> String {
    let b = &b[..b.len().min(MAX_STRING)];
    String::from_utf8_lossy(b).into_owned()
}

/// True when `data` starts as an ONNX model does: `ir_version` first (field 1, varint) with a
/// plausible value, and the top-level fields decode with a graph among them. Only the top level
/// is decoded (tensor data is skipped by length), so this is cheap on large models.
pub fn looks_like(data: &[u8]) -> bool {
    if data.len() < 4 || data[0] != 0x08 {
        return false;
    }
    let mut has_graph = false;
    for (known, f) in Fields::new(data, 0).enumerate() {
        match f {
            Ok((1, Value::Varint(v), _)) if (1..=64).contains(&v) => {}
            Ok((1, _, _)) => return false,
            Ok((7, Value::Len(_), _)) => has_graph = true,
            Ok((2..=6 | 8 | 14 | 20 | 25, Value::Len(_) | Value::Varint(_), _)) => {}
            Ok(_) => return false,
            // A model cut short: ONNX when what came before was (the reader reports the cut).
            Err(_) => return has_graph || known >= 2,
        }
    }
    has_graph
}

struct Walker {
    model: Model,
}

impl Walker {
    fn graph(&mut self, data: &[u8], base: usize, depth: usize) -> Result<(), OnnxError> {
        if depth > MAX_DEPTH {
            return Err(OnnxError::TooDeep);
        }
        for f in Fields::new(data, base) {
            let (field, v, at) = f?;
            if let Value::Len(b) = v {
                match field {
                    1 => self.node(b, at, depth + 1)?,
                    5 => {
                        self.model.initializers += 1;
                        self.tensor(b, at, depth + 1)?
                    }
                    15 => self.sparse(b, at, depth + 1)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn sparse(&mut self, data: &[u8], base: usize, depth: usize) -> Result<(), OnnxError> {
        if depth > MAX_DEPTH {
            return Err(OnnxError::TooDeep);
        }
        for f in Fields::new(data, base) {
            if let (1 | 2, Value::Len(b), at) = f? {
                self.tensor(b, at, depth + 1)?;
            }
        }
        Ok(())
    }

    fn tensor(&mut self, data: &[u8], base: usize, depth: usize) -> Result<(), OnnxError> {
        if depth > MAX_DEPTH {
            return Err(OnnxError::TooDeep);
        }
        let mut name = String::new();
        let mut entries = Vec::new();
        let mut data_location = 0;
        for f in Fields::new(data, base) {
            match f? {
                (8, Value::Len(b), _) => name = text(b),
                (13, Value::Len(b), at) => {
                    let mut k = String::new();
                    let mut val = String::new();
                    for e in Fields::new(b, at) {
                        match e? {
                            (1, Value::Len(x), _) => k = text(x),
                            (2, Value::Len(x), _) => val = text(x),
                            _ => {}
                        }
                    }
                    if entries.len() < 64 {
                        entries.push((k, val));
                    }
                }
                (14, Value::Varint(v), _) => data_location = v,
                _ => {}
            }
        }
        if !entries.is_empty() || data_location == 1 {
            if self.model.external.len() >= MAX_EXTERNAL {
                return Err(OnnxError::TooManyExternal);
            }
            self.model.external.push(External {
                tensor: name,
                entries,
                data_location,
                offset: base,
            });
        }
        Ok(())
    }

    fn node(&mut self, data: &[u8], base: usize, depth: usize) -> Result<(), OnnxError> {
        if depth > MAX_DEPTH {
            return Err(OnnxError::TooDeep);
        }
        self.model.node_count += 1;
        if self.model.node_count > MAX_NODES {
            return Err(OnnxError::TooManyNodes);
        }
        let mut node = Node {
            domain: String::new(),
            op_type: String::new(),
            name: String::new(),
            string_attrs: Vec::new(),
            offset: base,
        };
        for f in Fields::new(data, base) {
            match f? {
                (3, Value::Len(b), _) => node.name = text(b),
                (4, Value::Len(b), _) => node.op_type = text(b),
                (7, Value::Len(b), _) => node.domain = text(b),
                (5, Value::Len(b), at) => self.attribute(b, at, depth + 1, &mut node)?,
                _ => {}
            }
        }
        self.model.nodes.push(node);
        Ok(())
    }

    fn attribute(
        &mut self,
        data: &[u8],
        base: usize,
        depth: usize,
        node: &mut Node,
    ) -> Result<(), OnnxError> {
        if depth > MAX_DEPTH {
            return Err(OnnxError::TooDeep);
        }
        let mut name = String::new();
        let mut s = None;
        for f in Fields::new(data, base) {
            match f? {
                (1, Value::Len(b), _) => name = text(b),
                (4, Value::Len(b), _) => s = Some(text(b)),
                (5 | 10, Value::Len(b), at) => self.tensor(b, at, depth + 1)?,
                (6 | 11, Value::Len(b), at) => self.graph(b, at, depth + 1)?,
                (22 | 23, Value::Len(b), at) => self.sparse(b, at, depth + 1)?,
                _ => {}
            }
        }
        if let Some(s) = s {
            if node.string_attrs.len() < 64 {
                node.string_attrs.push((name, s));
            }
        }
        Ok(())
    }

    fn function(&mut self, data: &[u8], base: usize) -> Result<(), OnnxError> {
        let mut name = String::new();
        let mut domain = String::new();
        for f in Fields::new(data, base) {
            match f? {
                (1, Value::Len(b), _) => name = text(b),
                (10, Value::Len(b), _) => domain = text(b),
                (7, Value::Len(b), at) => self.node(b, at, 2)?,
                _ => {}
            }
        }
        self.model.function_domains.push((domain, name));
        Ok(())
    }
}

/// Where an initializer's values are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitData {
    /// Little-endian values in the model file: `raw_data`, or packed `float_data` /
    /// `double_data` (the same bytes for FLOAT and DOUBLE tensors).
    Bytes {
        /// Offset of the first byte in the model file.
        offset: usize,
        /// Length in bytes.
        len: usize,
    },
    /// In a file beside the model (`data_location: EXTERNAL`).
    External {
        /// `location`, relative to the model's folder.
        location: String,
        /// `offset` in that file (0 when absent).
        offset: u64,
        /// `length` (the tensor's size when absent).
        length: Option<u64>,
    },
    /// Held in a typed field that is not a run of little-endian values (`int32_data` varints,
    /// `string_data`, …): named for the message.
    Typed(&'static str),
    /// No values at all (an empty tensor).
    Empty,
}

/// A top-level graph initializer: the weights of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initializer {
    /// Name.
    pub name: String,
    /// `TensorProto.DataType`.
    pub data_type: u64,
    /// Dimensions.
    pub dims: Vec<u64>,
    /// Where the values are.
    pub data: InitData,
}

/// The initializers of a model's main graph (`ModelProto.graph.initializer`), in file order.
/// Sparse initializers and the initializers of subgraphs are not listed.
pub fn initializers(data: &[u8]) -> Result<Vec<Initializer>, OnnxError> {
    let mut out = Vec::new();
    for f in Fields::new(data, 0) {
        if let (7, Value::Len(graph), at) = f? {
            for g in Fields::new(graph, at) {
                if let (5, Value::Len(t), tat) = g? {
                    if out.len() == MAX_NODES {
                        return Err(OnnxError::TooManyNodes);
                    }
                    out.push(initializer(t, tat)?);
                }
            }
        }
    }
    Ok(out)
}

fn initializer(t: &[u8], base: usize) -> Result<Initializer, OnnxError> {
    let mut init = Initializer {
        name: String::new(),
        data_type: 0,
        dims: Vec::new(),
        data: InitData::Empty,
    };
    let mut external = false;
    let mut entries: Vec<(String, String)> = Vec::new();
    for f in Fields::new(t, base) {
        match f? {
            (1, Value::Varint(d), _) => init.dims.push(d),
            (1, Value::Len(packed), at) => {
                for v in Fields::packed_varints(packed, at) {
                    init.dims.push(v?);
                }
            }
            (2, Value::Varint(d), _) => init.data_type = d,
            (8, Value::Len(b), _) => init.name = text(b),
            (4 | 9 | 10, Value::Len(b), at) if !b.is_empty() => {
                init.data = InitData::Bytes {
                    offset: at,
                    len: b.len(),
                }
            }
            (5, _, _) => init.data = InitData::Typed("int32_data"),
            (6, _, _) => init.data = InitData::Typed("string_data"),
            (7, _, _) => init.data = InitData::Typed("int64_data"),
            (11, _, _) => init.data = InitData::Typed("uint64_data"),
            (4 | 10, Value::Fixed32(_) | Value::Fixed64(_), _) => {
                init.data = InitData::Typed("unpacked float_data")
            }
            (13, Value::Len(b), at) => {
                let (mut k, mut v) = (String::new(), String::new());
                for e in Fields::new(b, at) {
                    match e? {
                        (1, Value::Len(x), _) => k = text(x),
                        (2, Value::Len(x), _) => v = text(x),
                        _ => {}
                    }
                }
                entries.push((k, v));
            }
            (14, Value::Varint(1), _) => external = true,
            _ => {}
        }
    }
    if external {
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        init.data = InitData::External {
            location: get("location").cloned().unwrap_or_default(),
            offset: get("offset").and_then(|v| v.parse().ok()).unwrap_or(0),
            length: get("length").and_then(|v| v.parse().ok()),
        };
    }
    Ok(init)
}

/// Read a model.
pub fn read(data: &[u8]) -> Result<Model, OnnxError> {
    let mut w = Walker {
        model: Model::default(),
    };
    let mut has_graph = false;
    for f in Fields::new(data, 0) {
        let (field, v, at) = f?;
        match (field, v) {
            (1, Value::Varint(x)) => w.model.ir_version = x,
            (2, Value::Len(b)) => w.model.producer = text(b),
            (7, Value::Len(b)) => {
                has_graph = true;
                w.graph(b, at, 1)?
            }
            (8, Value::Len(b)) => {
                let mut d = String::new();
                let mut ver = 0;
                for e in Fields::new(b, at) {
                    match e? {
                        (1, Value::Len(x), _) => d = text(x),
                        (2, Value::Varint(x), _) => ver = x,
                        _ => {}
                    }
                }
                w.model.opsets.push((d, ver));
            }
            (20, Value::Len(b)) => {
                for e in Fields::new(b, at) {
                    if let (1 | 2, Value::Len(g), gat) = e? {
                        w.graph(g, gat, 2)?;
                    }
                }
            }
            (25, Value::Len(b)) => w.function(b, at)?,
            _ => {}
        }
    }
    if !has_graph {
        return Err(OnnxError::NoGraph);
    }
    Ok(w.model)
}
