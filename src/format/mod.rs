//! Readers of model formats other than pickles: each one parses its format with limits and typed
//! errors, and reports what the file holds. Judging what was read is done by the analysers in
//! [`crate::container`].

pub mod access;
pub mod compress;
pub mod detect;
pub mod dtype;
pub mod ggml;
pub mod gguf;
pub mod hdf5;
pub mod hf;
pub mod joblib;
pub mod keras;
pub mod marshal;
pub mod name;
pub mod npy;
pub mod numpy;
pub mod onnx;
pub mod pmml;
pub mod protobuf;
pub mod safetensors;
pub mod savedmodel;
pub mod sentencepiece;
pub mod sevenz;
pub mod skops;
pub mod tar;
pub mod template;
pub mod torch;
pub mod zip;

pub use name::Format;

/// Lower-case hex of bytes (digests, magic numbers in messages).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
