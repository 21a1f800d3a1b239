//! Streaming GGUF v3 writer (ggml `docs/gguf.md`; checks as ggml's `gguf.cpp` reader does).
//!
//! Layout written: magic `GGUF`, `u32` version 3, `u64` tensor count, `u64` KV count, the
//! metadata KVs, the tensor infos (name, `u32` n_dims, `u64` dims in ggml order — the torch
//! shape reversed —, `u32` type, `u64` offset relative to the data section), zero padding to
//! the alignment, then each tensor's bytes followed by zero padding to the alignment (the
//! last one too, as gguf-py does). Everything is little-endian.
//!
//! Usage: [`GgufWriter::new`], any number of [`GgufWriter::add_kv`] and
//! [`GgufWriter::add_tensor_info`], then [`GgufWriter::write_header`], then the tensors' bytes
//! in the order their infos were added through [`GgufWriter::write_tensor_data`] (one call per
//! tensor or several chunks per tensor), then [`GgufWriter::finish`]. Only the metadata is held
//! in memory; tensor data goes straight to the output (wrap files in a `BufWriter`).
//!
//! What is refused, so that ggml/llama.cpp and gguf-py can read every file written:
//! empty, non-ASCII or over-long (> 65535 bytes) keys; duplicate keys; `general.alignment`
//! that is not a `u32` power of two ≥ 8; tensor names longer than 63 bytes (ggml's
//! `GGML_MAX_NAME` is 64 including the NUL) or duplicated; more than 4 dimensions
//! (`GGML_MAX_DIMS`); zero-sized dimensions (ggml's reader divides by them); element counts
//! that overflow `i64`; rows that are not a whole number of blocks of the tensor's type.
//! Nested arrays cannot be expressed ([`Array`] holds scalars or strings only): ggml rejects
//! them.
//!
//! When a quantized tensor is present and no `general.quantization_version` was given, the
//! writer adds it (`u32` 2) as the spec requires. A scalar (empty shape) is written as one
//! dimension of 1.

use std::collections::HashSet;
use std::io::Write;

use thiserror::Error;

use super::{
    ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, MAX_DIMS, MAX_TENSOR_NAME_BYTES,
    QUANTIZATION_VERSION,
};
use crate::quant::{GgmlType, QuantError};

const ALIGNMENT_KEY: &str = "general.alignment";
const QUANT_VERSION_KEY: &str = "general.quantization_version";
const MAX_KEY_BYTES: usize = 65535;

/// A metadata value.
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous metadata array (nested arrays are not representable: ggml rejects them).
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    /// The GGUF type id of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }
}

impl Array {
    /// The GGUF type id of the elements.
    pub fn element_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Value { Value::$v(x) }
        }
        impl From<Vec<$t>> for Value {
            fn from(x: Vec<$t>) -> Value { Value::Array(Array::$v(x)) }
        }
    )*};
}
value_from!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
            bool => Bool, String => String, u64 => U64, i64 => I64, f64 => F64);

impl From<&str> for Value {
    fn from(x: &str) -> Value {
        Value::String(x.to_string())
    }
}

impl From<Vec<&str>> for Value {
    fn from(x: Vec<&str>) -> Value {
        Value::Array(Array::String(x.into_iter().map(str::to_string).collect()))
    }
}

impl From<Array> for Value {
    fn from(x: Array) -> Value {
        Value::Array(x)
    }
}

/// Errors from the GGUF writer.
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("I/O error while writing GGUF: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata key is empty")]
    EmptyKey,
    #[error("metadata key '{0}' is not ASCII or longer than 65535 bytes")]
    BadKey(String),
    #[error("metadata key '{0}' is given twice")]
    DuplicateKey(String),
    #[error("general.alignment must be a u32 power of two of at least 8, got {0:?}")]
    BadAlignment(Value),
    #[error("tensor name '{name}' is {len} bytes long; GGUF readers accept at most 63")]
    NameTooLong { name: String, len: usize },
    #[error("tensor name is empty")]
    EmptyName,
    #[error("tensor '{0}' is given twice")]
    DuplicateTensor(String),
    #[error("tensor '{name}' has {n_dims} dimensions; GGUF (ggml) supports at most 4")]
    TooManyDims { name: String, n_dims: usize },
    #[error("tensor '{name}' has a zero-sized dimension {shape:?}, which ggml cannot read")]
    ZeroDim { name: String, shape: Vec<usize> },
    #[error("tensor '{name}' with shape {shape:?} has too many elements")]
    TooLarge { name: String, shape: Vec<usize> },
    #[error("tensor '{name}' cannot be stored as {ty}: {source}")]
    Layout {
        name: String,
        ty: GgmlType,
        source: QuantError,
    },
    #[error("{0}")]
    Order(&'static str),
    #[error("{got} more bytes given for tensor '{name}', which has only {left} bytes left")]
    TooMuchData { name: String, got: usize, left: u64 },
    #[error("tensor '{name}' is incomplete: {written} of {expected} bytes written")]
    Incomplete {
        name: String,
        written: u64,
        expected: u64,
    },
}

/// A tensor's entry in the file.
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Shape in torch/numpy order (the file stores it reversed).
    pub shape: Vec<usize>,
    pub ty: GgmlType,
    /// Size of the data in bytes (without padding).
    pub nbytes: u64,
    /// Offset of the data from the start of the data section (set by `write_header`).
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Collecting,
    Data { index: usize, written: u64 },
    Finished,
}

/// Streaming GGUF v3 writer; see the module documentation for the call order.
pub struct GgufWriter<W: Write> {
    out: W,
    kvs: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<TensorInfo>,
    names: HashSet<String>,
    alignment: u64,
    state: State,
    position: u64,
}

impl<W: Write> GgufWriter<W> {
    /// A writer that will write to `out`. Nothing is written before `write_header`.
    pub fn new(out: W) -> Self {
        GgufWriter {
            out,
            kvs: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
            alignment: DEFAULT_ALIGNMENT as u64,
            state: State::Collecting,
            position: 0,
        }
    }

    /// Adds a metadata key/value pair (written in the order added). Setting
    /// `general.alignment` (a `u32` power of two ≥ 8) changes the data alignment.
    pub fn add_kv(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<(), GgufError> {
        self.expect_collecting()?;
        let key = key.into();
        let value = value.into();
        if key.is_empty() {
            return Err(GgufError::EmptyKey);
        }
        if !key.is_ascii() || key.len() > MAX_KEY_BYTES {
            return Err(GgufError::BadKey(key));
        }
        if self.keys.contains(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        if key == ALIGNMENT_KEY {
            match value {
                Value::U32(a) if a >= 8 && a.is_power_of_two() => self.alignment = a as u64,
                other => return Err(GgufError::BadAlignment(other)),
            }
        }
        self.keys.insert(key.clone());
        self.kvs.push((key, value));
        Ok(())
    }

    /// Declares a tensor: its name, its shape in torch order (last dimension = rows) and its
    /// type. Returns the number of data bytes `write_tensor_data` must then receive for it.
    pub fn add_tensor_info(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        ty: GgmlType,
    ) -> Result<u64, GgufError> {
        self.expect_collecting()?;
        let name = name.into();
        if name.is_empty() {
            return Err(GgufError::EmptyName);
        }
        if name.len() > MAX_TENSOR_NAME_BYTES {
            let len = name.len();
            return Err(GgufError::NameTooLong { name, len });
        }
        if self.names.contains(&name) {
            return Err(GgufError::DuplicateTensor(name));
        }
        if shape.len() > MAX_DIMS {
            let n_dims = shape.len();
            return Err(GgufError::TooManyDims { name, n_dims });
        }
        if shape.contains(&0) {
            return Err(GgufError::ZeroDim {
                name,
                shape: shape.to_vec(),
            });
        }
        let elems = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .filter(|&n| n <= i64::MAX as u64);
        if elems.is_none() {
            return Err(GgufError::TooLarge {
                name,
                shape: shape.to_vec(),
            });
        }
        let nbytes = match ty.nbytes(shape) {
            Ok(n) => n as u64,
            Err(QuantError::Overflow) => {
                return Err(GgufError::TooLarge {
                    name,
                    shape: shape.to_vec(),
                })
            }
            Err(source) => return Err(GgufError::Layout { name, ty, source }),
        };
        self.names.insert(name.clone());
        self.tensors.push(TensorInfo {
            name,
            shape: shape.to_vec(),
            ty,
            nbytes,
            offset: 0,
        });
        Ok(nbytes)
    }

    /// The tensors declared so far (offsets are final after `write_header`).
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Bytes written to the output so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The tensor the next `write_tensor_data` bytes belong to, if any.
    pub fn current_tensor(&self) -> Option<&TensorInfo> {
        match self.state {
            State::Data { index, .. } => self.tensors.get(index),
            _ => None,
        }
    }

    /// Writes the header, metadata and tensor infos, and the padding before the data.
    pub fn write_header(&mut self) -> Result<(), GgufError> {
        self.expect_collecting()?;
        if self.tensors.iter().any(|t| t.ty.is_quantized())
            && !self.keys.contains(QUANT_VERSION_KEY)
        {
            self.keys.insert(QUANT_VERSION_KEY.to_string());
            self.kvs.push((
                QUANT_VERSION_KEY.to_string(),
                Value::U32(QUANTIZATION_VERSION),
            ));
        }
        let mut offset = 0u64;
        for t in &mut self.tensors {
            t.offset = offset;
            offset = offset
                .checked_add(pad_to(t.nbytes, self.alignment))
                .ok_or_else(|| GgufError::TooLarge {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                })?;
        }

        let mut h = Vec::with_capacity(4096);
        h.extend_from_slice(&GGUF_MAGIC);
        h.extend_from_slice(&GGUF_VERSION.to_le_bytes());
        h.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (key, value) in &self.kvs {
            put_str(&mut h, key);
            h.extend_from_slice(&(value.value_type() as u32).to_le_bytes());
            put_value(&mut h, value);
        }
        for t in &self.tensors {
            put_str(&mut h, &t.name);
            let n_dims = t.shape.len().max(1);
            h.extend_from_slice(&(n_dims as u32).to_le_bytes());
            if t.shape.is_empty() {
                h.extend_from_slice(&1u64.to_le_bytes());
            }
            for &d in t.shape.iter().rev() {
                h.extend_from_slice(&(d as u64).to_le_bytes());
            }
            h.extend_from_slice(&t.ty.id().to_le_bytes());
            h.extend_from_slice(&t.offset.to_le_bytes());
        }
        if !self.tensors.is_empty() {
            let padded = pad_to(h.len() as u64, self.alignment) as usize;
            h.resize(padded, 0);
        }
        self.out.write_all(&h)?;
        self.position = h.len() as u64;
        self.state = State::Data {
            index: 0,
            written: 0,
        };
        Ok(())
    }

    /// Writes the next bytes of tensor data. Tensors come in the order their infos were added;
    /// a tensor's bytes may be split over several calls, but one call never spans two
    /// tensors (more bytes than the current tensor has left is an error, nothing is written).
    /// Padding is added after each completed tensor.
    pub fn write_tensor_data(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let (index, written) = match self.state {
            State::Data { index, written } => (index, written),
            State::Collecting => {
                return Err(GgufError::Order(
                    "write_header must be called before tensor data",
                ))
            }
            State::Finished => return Err(GgufError::Order("the file is already finished")),
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let Some(t) = self.tensors.get(index) else {
            return Err(GgufError::TooMuchData {
                name: String::from("(every tensor is complete)"),
                got: bytes.len(),
                left: 0,
            });
        };
        let left = t.nbytes - written;
        if bytes.len() as u64 > left {
            return Err(GgufError::TooMuchData {
                name: t.name.clone(),
                got: bytes.len(),
                left,
            });
        }
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        if bytes.len() as u64 == left {
            self.end_tensor(index)?;
        } else {
            self.state = State::Data {
                index,
                written: written + bytes.len() as u64,
            };
        }
        Ok(())
    }

    /// Checks that every tensor was written completely, flushes and returns the output.
    pub fn finish(mut self) -> Result<W, GgufError> {
        match self.state {
            State::Collecting => self.write_header()?,
            State::Finished => return Err(GgufError::Order("the file is already finished")),
            State::Data { .. } => {}
        }
        if let State::Data { index, written } = self.state {
            if let Some(t) = self.tensors.get(index) {
                return Err(GgufError::Incomplete {
                    name: t.name.clone(),
                    written,
                    expected: t.nbytes,
                });
            }
        }
        self.state = State::Finished;
        self.out.flush()?;
        Ok(self.out)
    }

    fn expect_collecting(&self) -> Result<(), GgufError> {
        match self.state {
            State::Collecting => Ok(()),
            _ => Err(GgufError::Order(
                "metadata and tensor infos must be added before write_header",
            )),
        }
    }

    /// Pads after tensor `index` and moves to the next one.
    fn end_tensor(&mut self, index: usize) -> Result<(), GgufError> {
        let nbytes = self.tensors[index].nbytes;
        let pad = (pad_to(nbytes, self.alignment) - nbytes) as usize;
        if pad > 0 {
            self.out.write_all(&vec![0u8; pad])?;
            self.position += pad as u64;
        }
        self.state = State::Data {
            index: index + 1,
            written: 0,
        };
        Ok(())
    }
}

fn pad_to(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(*x as u8),
        Value::String(s) => put_str(h, s),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            h.extend_from_slice(&(a.element_type() as u32).to_le_bytes());
            h.extend_from_slice(&(a.len() as u64).to_le_bytes());
            match a {
                Array::U8(v) => h.extend_from_slice(v),
                Array::I8(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::U16(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::I16(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::U32(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::I32(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::F32(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::Bool(v) => v.iter().for_each(|x| h.push(*x as u8)),
                Array::String(v) => v.iter().for_each(|s| put_str(h, s)),
                Array::U64(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::I64(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
                Array::F64(v) => v.iter().for_each(|x| h.extend_from_slice(&x.to_le_bytes())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_layout() {
        // formats.md §6.7 / gguf-py: arch KV, u32 KV, string array, F32 [2,3], Q8_0 [2,32].
        let mut w = GgufWriter::new(Vec::new());
        w.add_kv("general.architecture", "llama").unwrap();
        w.add_kv("llama.block_count", 1u32).unwrap();
        w.add_kv("tokenizer.ggml.tokens", vec!["a", "bc"]).unwrap();
        w.add_kv(QUANT_VERSION_KEY, 2u32).unwrap();
        assert_eq!(
            w.add_tensor_info("tok", &[2, 3], GgmlType::F32).unwrap(),
            24
        );
        assert_eq!(
            w.add_tensor_info("q", &[2, 32], GgmlType::Q8_0).unwrap(),
            68
        );
        w.write_header().unwrap();
        let data_start = w.position();
        assert_eq!(data_start % 32, 0);
        w.write_tensor_data(&[1u8; 24]).unwrap();
        assert_eq!(w.current_tensor().unwrap().name, "q");
        w.write_tensor_data(&[2u8; 60]).unwrap();
        w.write_tensor_data(&[3u8; 8]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[0..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 4);
        let ds = data_start as usize;
        assert_eq!(&bytes[ds..ds + 24], &[1u8; 24]);
        assert_eq!(&bytes[ds + 24..ds + 32], &[0u8; 8]);
        assert_eq!(&bytes[ds + 32..ds + 92], &[2u8; 60]);
        assert_eq!(bytes.len(), ds + 32 + 96);
    }

    #[test]
    fn refuses_bad_input() {
        let mut w = GgufWriter::new(Vec::new());
        assert!(matches!(w.add_kv("", 1u8), Err(GgufError::EmptyKey)));
        w.add_kv("a.b", 1u8).unwrap();
        assert!(matches!(
            w.add_kv("a.b", 2u8),
            Err(GgufError::DuplicateKey(_))
        ));
        assert!(matches!(
            w.add_kv("général", 2u8),
            Err(GgufError::BadKey(_))
        ));
        assert!(matches!(
            w.add_kv(ALIGNMENT_KEY, 64u64),
            Err(GgufError::BadAlignment(_))
        ));
        assert!(matches!(
            w.add_kv(ALIGNMENT_KEY, 48u32),
            Err(GgufError::BadAlignment(_))
        ));
        let long = "x".repeat(64);
        assert!(matches!(
            w.add_tensor_info(long, &[4], GgmlType::F32),
            Err(GgufError::NameTooLong { len: 64, .. })
        ));
        w.add_tensor_info("x".repeat(63), &[4], GgmlType::F32)
            .unwrap();
        assert!(matches!(
            w.add_tensor_info("x".repeat(63), &[4], GgmlType::F32),
            Err(GgufError::DuplicateTensor(_))
        ));
        assert!(matches!(
            w.add_tensor_info("t5", &[1, 2, 3, 4, 5], GgmlType::F32),
            Err(GgufError::TooManyDims { n_dims: 5, .. })
        ));
        assert!(matches!(
            w.add_tensor_info("z", &[0, 4], GgmlType::F32),
            Err(GgufError::ZeroDim { .. })
        ));
        assert!(matches!(
            w.add_tensor_info("q", &[4, 48], GgmlType::Q4_0),
            Err(GgufError::Layout { .. })
        ));
        assert!(matches!(
            w.add_tensor_info("big", &[usize::MAX / 2, 4], GgmlType::F32),
            Err(GgufError::TooLarge { .. })
        ));
        assert!(matches!(
            w.write_tensor_data(&[0]),
            Err(GgufError::Order(_))
        ));
        w.write_header().unwrap();
        assert!(matches!(w.add_kv("late", 1u8), Err(GgufError::Order(_))));
        assert!(matches!(
            w.write_tensor_data(&[0; 20]),
            Err(GgufError::TooMuchData { .. })
        ));
    }

    #[test]
    fn incomplete_is_an_error() {
        let mut w = GgufWriter::new(Vec::new());
        w.add_tensor_info("a", &[8], GgmlType::F32).unwrap();
        w.write_header().unwrap();
        w.write_tensor_data(&[0; 16]).unwrap();
        assert!(matches!(
            w.finish(),
            Err(GgufError::Incomplete {
                written: 16,
                expected: 32,
                ..
            })
        ));
    }

    #[test]
    fn custom_alignment_and_scalar() {
        let mut w = GgufWriter::new(Vec::new());
        w.add_kv(ALIGNMENT_KEY, 64u32).unwrap();
        w.add_tensor_info("s", &[], GgmlType::F32).unwrap();
        w.add_tensor_info("v", &[3], GgmlType::F16).unwrap();
        w.write_header().unwrap();
        assert_eq!(w.position() % 64, 0);
        assert_eq!(w.tensor_infos()[1].offset, 64);
        assert!(matches!(
            w.write_tensor_data(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            Err(GgufError::TooMuchData { left: 4, .. })
        ));
        w.write_tensor_data(&[1, 2, 3, 4]).unwrap();
        w.write_tensor_data(&[5, 6, 7, 8, 9, 10]).unwrap();
        assert!(w.current_tensor().is_none());
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 64, 0);
    }
}
