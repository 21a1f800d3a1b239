//! GGUF (version 3) output: a streaming writer that lays files out exactly as ggml's reader
//! (`gguf.cpp`) requires. Reading and validating GGUF input lives elsewhere.

pub mod writer;

pub use writer::{
    Array, GgufError, GgufWriter, TensorInfo, Value, ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC,
    GGUF_VERSION, MAX_DIMS, MAX_TENSOR_NAME_BYTES, QUANTIZATION_VERSION,
};
