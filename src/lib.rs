//! picklescan-rs: scan pickle-based model files without executing them, and extract their
//! tensors safely.
//!
//! The library never prints; the `picklescan-rs` binary is a thin layer over it.
//! Pipeline: bytes → container detection ([`container`]) → pickle streams → symbolic machine ([`pickle::vm`]) → events → rules
//! ([`rules`]) → findings ([`finding`]) → report ([`report`]).

#![warn(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod container;
pub mod engine;
pub mod extract;
pub mod file;
pub mod finding;
pub mod format;
pub mod gguf;
pub mod limits;
pub mod mmap;
pub mod names;
pub mod pickle;
pub mod policy;
pub mod quant;
#[cfg(feature = "remote")]
pub mod remote;
pub mod report;
pub mod rules;
pub mod scan;
#[cfg(feature = "serve")]
pub mod serve;
pub mod walk;

pub use finding::{Finding, Severity, Usage, Verdict};
pub use limits::Limits;
pub use scan::Scanner;
