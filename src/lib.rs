//! picklescan-rs: scan pickle-based model files without executing them, and extract their
//! tensors safely.
//!
//! The library never prints; the `picklescan-rs` binary is a thin layer over it.

pub mod finding;
pub mod gguf;
pub mod quant;
pub mod rules;
