//! The walk over a pickle's value graph: containers are followed and named, known array
//! constructions become tensors, everything else is dropped and listed.
//!
//! Names follow the containers: dict keys joined with `.`, list and tuple items by position. An
//! object the walk does not know (a module, an estimator, `argparse.Namespace`) is never created:
//! it is listed as dropped with its class, and the state its `__setstate__` would receive is walked
//! under the same name, so `LogisticRegression.coef_` is found as `coef_`. The walk is bounded in
//! visits and depth, and shared references are followed once per path (a cycle is dropped).

use super::numpy::{self, InlineArrays};
use super::tensor::{Backing, ByteSource, ElemType, ViewError};
use super::torch::{self, StorageError, Storages};
use crate::format::joblib::JoblibError;
use crate::pickle::value::{Id, Value};
use crate::pickle::vm::Vm;

/// At most this many values are visited by one walk (a shared sub-graph is visited once per path).
pub const MAX_VISITS: usize = 4_000_000;
/// At most this deep.
pub const MAX_DEPTH: usize = 512;

/// Why a value of the graph cannot be rebuilt as torch or numpy would rebuild it. The walk stops
/// at the first one: a tensor that cannot be read is never written half-read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    /// More paths than [`MAX_VISITS`].
    #[error(
        "the object graph has more than {MAX_VISITS} paths to follow (shared references multiplying); refusing to expand it"
    )]
    TooManyPaths,
    /// Deeper than [`MAX_DEPTH`].
    #[error("the object graph is nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// The value under this name.
    #[error("'{name}': {source}")]
    At {
        /// Its name.
        name: String,
        /// Why.
        source: Box<RebuildError>,
    },
    /// A rebuild call with arguments it does not take.
    #[error("{call} with {given} arguments")]
    Arguments {
        /// The call.
        call: String,
        /// Arguments given.
        given: usize,
    },
    /// A state tuple of a length the rebuild does not take.
    #[error("{what} has {given} items")]
    Items {
        /// Which state.
        what: &'static str,
        /// Items it has.
        given: usize,
    },
    /// An argument or a state item that is not what the rebuild takes there.
    #[error("{0}")]
    Malformed(&'static str),
    /// An argument that is not a non-negative integer.
    #[error("{what} is not a non-negative integer: {found}")]
    NotAnInteger {
        /// Which argument.
        what: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// An argument that is not a tuple of integers.
    #[error("{0} is not a tuple of integers")]
    NotIntegers(&'static str),
    /// A storage argument that is no persistent id.
    #[error("the storage argument is a {0}, not a persistent storage id")]
    NotAStorage(&'static str),
    /// A storage class torch does not have.
    #[error("unknown storage class {0}")]
    StorageClass(String),
    /// A dtype argument that is no torch dtype.
    #[error("the dtype argument is {0}, not a torch dtype")]
    NotTorchDtype(String),
    /// A torch dtype this tool does not know.
    #[error("unknown torch dtype {0}")]
    TorchDtype(String),
    /// A size past 64 bits.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// A storage's bytes.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A storage shorter than its pickle declares.
    #[error("storage '{key}' declares {declared} bytes but its record has {has}")]
    ShortStorage {
        /// Its key.
        key: String,
        /// Bytes declared.
        declared: u64,
        /// Bytes there are.
        has: usize,
    },
    /// A legacy storage view outside its storage.
    #[error("storage view ({offset}, {size}) outside storage '{key}'")]
    ViewOutside {
        /// The root storage's key.
        key: String,
        /// Offset in elements.
        offset: u64,
        /// Size in elements.
        size: u64,
    },
    /// An array whose bytes do not match its shape and dtype.
    #[error("array of shape {shape:?} and dtype {dtype} needs {need} bytes but has {has}")]
    ArrayBytes {
        /// Shape.
        shape: Vec<u64>,
        /// numpy's type string.
        dtype: String,
        /// Bytes needed.
        need: u64,
        /// Bytes there are.
        has: usize,
    },
    /// A tensor view that does not fit its bytes.
    #[error(transparent)]
    View(#[from] ViewError),
    /// A pickled numpy dtype or joblib array that cannot be read.
    #[error(transparent)]
    Joblib(#[from] JoblibError),
    /// Bytes pickled as text that do not decode (protocol 2's `_codecs.encode`).
    #[error("{0}")]
    Bytes(String),
}

/// What a value turned out to be.
pub(crate) enum Interp {
    /// An array: element type, shape and where its bytes are.
    Array {
        /// Element type.
        elem: ElemType,
        /// Shape.
        shape: Vec<u64>,
        /// Bytes.
        source: ByteSource,
    },
    /// A tensor that cannot be written (quantized, flagged views): refused or skipped.
    Unsupported(String),
    /// Not extracted, with the reason.
    Dropped(String),
}

/// One named thing the walk found.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// A tensor that can be written.
    Tensor {
        /// Name.
        name: String,
        /// Element type (always [`ElemType::Supported`] here).
        elem: super::tensor::DType,
        /// Shape.
        shape: Vec<u64>,
        /// Bytes.
        source: ByteSource,
    },
    /// A tensor that cannot be written.
    Unsupported {
        /// Name.
        name: String,
        /// Why.
        what: String,
    },
    /// Something that is not a tensor.
    Dropped {
        /// Name.
        name: String,
        /// What it is (`int`, `object of argparse.Namespace (not created)`, …).
        what: String,
    },
}

/// The global a value is, as `(module, name)` after the module renames torch's and numpy's
/// loaders apply.
pub(crate) fn global_of(vm: &Vm<'_>, id: Id) -> Option<(String, String)> {
    let g = vm.as_global(id)?;
    let module = match g.module.as_str() {
        "torch.tensor" => "torch._tensor".to_string(),
        m => {
            if let Some(rest) = m.strip_prefix("numpy.core") {
                format!("numpy._core{rest}")
            } else {
                m.to_string()
            }
        }
    };
    Some((module, g.name.clone()))
}

/// The walk's context and findings.
pub(crate) struct Walk<'w, 'a> {
    pub vm: &'w Vm<'a>,
    /// The bytes the pickle was read from (bytes values are slices of them).
    pub pickle: Backing,
    pub storages: &'w dyn Storages,
    pub inline: &'w InlineArrays,
    pub leaves: Vec<Leaf>,
    /// The name of a tensor that is the whole pickle.
    pub root_name: String,
    visits: usize,
    path: Vec<Id>,
}

impl<'w, 'a> Walk<'w, 'a> {
    pub fn new(
        vm: &'w Vm<'a>,
        pickle: Backing,
        storages: &'w dyn Storages,
        inline: &'w InlineArrays,
        root_name: &str,
    ) -> Self {
        Walk {
            vm,
            pickle,
            storages,
            inline,
            leaves: Vec::new(),
            root_name: root_name.to_string(),
            visits: 0,
            path: Vec::new(),
        }
    }

    fn leaf_name(&self, name: &str) -> String {
        if name.is_empty() {
            self.root_name.clone()
        } else {
            name.to_string()
        }
    }

    fn drop_leaf(&mut self, name: &str, what: impl Into<String>) {
        let name = if name.is_empty() {
            "(top level)".to_string()
        } else {
            name.to_string()
        };
        self.leaves.push(Leaf::Dropped {
            name,
            what: what.into(),
        });
    }

    /// Walk `id`, naming what is found under `name`.
    pub fn walk(&mut self, id: Id, name: &str) -> Result<(), RebuildError> {
        self.visits += 1;
        if self.visits > MAX_VISITS {
            return Err(RebuildError::TooManyPaths);
        }
        if self.path.len() >= MAX_DEPTH {
            return Err(RebuildError::TooDeep);
        }
        if self.path.contains(&id) {
            self.drop_leaf(name, "recursive reference");
            return Ok(());
        }
        self.path.push(id);
        let r = self.walk_inner(id, name);
        self.path.pop();
        r
    }

    fn walk_inner(&mut self, id: Id, name: &str) -> Result<(), RebuildError> {
        let vm = self.vm;
        match vm.value(id) {
            Value::Dict(pairs) => self.walk_pairs(&pairs.clone(), name),
            Value::List(items) | Value::Tuple(items) => {
                for (i, &item) in items.clone().iter().enumerate() {
                    self.walk(item, &join(name, &i.to_string()))?;
                }
                Ok(())
            }
            Value::Object(o) => {
                if let Some(r) = self.interpret(id) {
                    let interp = r.map_err(|e| RebuildError::At {
                        name: self.leaf_name(name),
                        source: Box::new(e),
                    })?;
                    self.add(name, interp);
                    return Ok(());
                }
                let global = global_of(vm, o.func);
                if let Some((m, n)) = &global {
                    if m == "collections" && n == "OrderedDict" {
                        // OrderedDict(items) with items a list of pairs, then SETITEMS.
                        if let Some(args) = vm.value(o.args).as_seq() {
                            if let Some(first) = args.first().and_then(|&a| vm.value(a).as_seq()) {
                                let mut pairs = Vec::new();
                                for &p in first {
                                    match vm.value(p).as_seq() {
                                        Some([k, v]) => pairs.push((*k, *v)),
                                        _ => self
                                            .drop_leaf(name, "OrderedDict item that is not a pair"),
                                    }
                                }
                                self.walk_pairs(&pairs, name)?;
                            }
                        }
                        let pairs = o.pairs.clone();
                        return self.walk_pairs(&pairs, name);
                    }
                }
                let class = match &global {
                    Some((m, n)) => format!("{m}.{n}"),
                    None => "a computed callable".to_string(),
                };
                self.drop_leaf(name, format!("object of {class} (never created)"));
                // What its __setstate__ would get: walk it for names (sklearn attributes).
                if let Some(state) = o.state {
                    match vm.value(state) {
                        Value::Dict(pairs) => self.walk_state(&pairs.clone(), name)?,
                        // (state, slotstate)
                        Value::Tuple(t) if t.len() == 2 => {
                            for &part in &t.clone() {
                                if let Value::Dict(pairs) = vm.value(part) {
                                    self.walk_state(&pairs.clone(), name)?;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Value::Persistent { .. } => {
                self.drop_leaf(name, "persistent object outside a tensor (a bare storage)");
                Ok(())
            }
            Value::Global(_) => {
                let g = vm.as_global(id).map(|g| g.qualified()).unwrap_or_default();
                self.drop_leaf(name, format!("reference to {g}"));
                Ok(())
            }
            other => {
                self.drop_leaf(name, other.type_name());
                Ok(())
            }
        }
    }

    /// The state of an object that is never created. A torch `nn.Module` (a whole model saved
    /// with `torch.save(model)`) keeps its tensors in `_parameters` and `_buffers` and its
    /// children in `_modules`: they are named as `model.state_dict()` names them (`0.weight`,
    /// not `_modules.0._parameters.weight`), so that the output loads with `load_state_dict`.
    fn walk_state(&mut self, pairs: &[(Id, Id)], name: &str) -> Result<(), RebuildError> {
        let keys: Vec<Option<String>> = pairs
            .iter()
            .map(|&(k, _)| key_name(self.vm.value(k)))
            .collect();
        let has = |k: &str| keys.iter().any(|x| x.as_deref() == Some(k));
        if !(has("_parameters") && has("_modules")) {
            return self.walk_pairs(pairs, name);
        }
        for (&(k, v), key) in pairs.iter().zip(&keys) {
            match key.as_deref() {
                Some("_parameters" | "_buffers" | "_modules") => self.walk(v, name)?,
                _ => self.walk_pairs(&[(k, v)], name)?,
            }
        }
        Ok(())
    }

    fn walk_pairs(&mut self, pairs: &[(Id, Id)], name: &str) -> Result<(), RebuildError> {
        for &(k, v) in pairs {
            match key_name(self.vm.value(k)) {
                Some(key) => self.walk(v, &join(name, &key))?,
                None => self.drop_leaf(
                    &join(name, "<key>"),
                    format!("entry with a {} key", self.vm.value(k).type_name()),
                ),
            }
        }
        Ok(())
    }

    fn add(&mut self, name: &str, interp: Interp) {
        let name = self.leaf_name(name);
        let leaf = match interp {
            Interp::Array {
                elem: ElemType::Supported(d),
                shape,
                source,
            } => Leaf::Tensor {
                name,
                elem: d,
                shape,
                source,
            },
            Interp::Array {
                elem: ElemType::Unsupported { name: what, .. },
                ..
            } => Leaf::Unsupported {
                name,
                what: format!("dtype {what}"),
            },
            Interp::Unsupported(what) => Leaf::Unsupported { name, what },
            Interp::Dropped(what) => Leaf::Dropped { name, what },
        };
        self.leaves.push(leaf);
    }

    /// If `id` is a known array construction, interpret it.
    pub fn interpret(&mut self, id: Id) -> Option<Result<Interp, RebuildError>> {
        let vm = self.vm;
        let Value::Object(o) = vm.value(id) else {
            return None;
        };
        let (m, n) = global_of(vm, o.func)?;
        if let Some(r) = torch::rebuild(self, &m, &n, o.args) {
            return Some(r);
        }
        numpy::array(self, &m, &n, id)
    }

    /// `id` must be a tensor (the data of a Parameter).
    pub fn tensor_value(&mut self, id: Id) -> Result<Interp, RebuildError> {
        match self.interpret(id) {
            Some(r) => r,
            None => Ok(Interp::Dropped(
                "parameter whose data is not a known tensor construction".into(),
            )),
        }
    }
}

/// `prefix.key`, or `key` at the top.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A dict key as a name: strings as they are, integers in decimal, like `str(key)`.
fn key_name(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Value::None => Some("None".into()),
        Value::Bytes(b) => Some(b.iter().map(|&c| c as char).collect()),
        _ => None,
    }
}
