//! picklescan-rs: scan pickle-based model files without executing them, and extract their
//! tensors safely.
//!
//! The library never prints; the `picklescan-rs` binary is a thin layer over it.
//!
//! The interface: an [`engine::Engine`] (rules, limits, policy) scans files and bytes into
//! [`report::FileReport`]s of [`Finding`]s with a [`Verdict`]; [`extract`] writes a file's
//! tensors as safetensors or GGUF ([`quant`] holds the GGUF types and quantizers, [`gguf`] the
//! writer); [`remote`] scans over HTTP and the Hugging Face Hub, [`serve`] is the HTTP API.
//! Pipeline: bytes → container detection → pickle streams → symbolic machine → events → rules
//! ([`rules`]) → findings ([`finding`]) → report ([`report`]); the readers and the machine are
//! in the hidden `internals` module, which is not a stable interface.

#![warn(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod engine;
pub mod extract;
pub mod finding;
/// GGUF output: the streaming writer, its value types and limits (GGUF's reader and writer
/// share one module, `format::gguf`; the writer is the part of it a user of the crate needs).
pub mod gguf {
    pub use crate::format::gguf::write::{Array, GgufError, GgufWriter, TensorInfo, Value};
    pub use crate::format::gguf::{
        ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, MAX_DIMS, MAX_TENSOR_NAME_BYTES,
        QUANTIZATION_VERSION,
    };
}
pub mod limits;
pub mod policy;
pub mod quant;
#[cfg(feature = "remote")]
pub mod remote;
pub mod report;
pub mod rules;
pub mod scan;
#[cfg(feature = "serve")]
pub mod serve;

pub use finding::{Finding, Severity, Usage, Verdict};
pub use format::Format;
pub use limits::Limits;
pub use scan::Scanner;

#[doc(hidden)]
pub mod internals;
pub(crate) use internals::{container, file, format, mmap, names, pickle, walk};
