//! All integration tests, as modules of one test binary: one link instead of one per file, which
//! is most of the time `cargo test` takes on a small machine.
//!
//! To add tests, write `tests/it/NAME.rs` and declare it below (`mod NAME;`); shared helpers are
//! `crate::common` (pickle assembler, compressors), `crate::manifest` (corpus manifest checks)
//! and `crate::server` (an HTTP server on 127.0.0.1). Run one module with
//! `cargo test --test it NAME::`. A file put directly in `tests/` still builds, as a binary of
//! its own: move it here (`git mv tests/NAME.rs tests/it/`, then `use crate::common::…` for its
//! `mod common;`). Modules that need the binary or an optional part of the library are built only
//! with its Cargo feature (the binary needs `cli`, `remote` and `serve`).

// Shared helpers.
mod common;
mod manifest;
#[cfg(feature = "remote")]
mod server;

// Test modules.
mod architecture;
mod bombs;
mod bypass;
#[cfg(all(feature = "cli", feature = "remote", feature = "serve"))] // runs the binary
mod cli;
#[cfg(all(feature = "cli", feature = "remote", feature = "serve"))] // runs the binary
mod config;
mod containers;
mod convert_hf;
mod corpus;
mod extract;
mod extract_gguf;
#[cfg(all(feature = "cli", feature = "remote", feature = "serve"))] // runs the binary
mod first_hour;
mod formats;
mod fuzz_regressions;
mod hdf5;
mod hdf5_chunked;
mod precision;
mod properties;
mod quant;
#[cfg(all(feature = "cli", feature = "remote", feature = "serve"))] // runs the binary
mod remote;
mod rules;
#[cfg(feature = "serve")]
mod serve;
mod vm;
mod weights_only;
