//! The readers and machinery under the public modules, for the crate's own fuzz targets,
//! benchmarks and tests. Not a stable interface: use [`crate::engine::Engine`],
//! [`crate::Scanner`], [`crate::extract`] and [`crate::report`]. Inside the crate these modules
//! are reached as `crate::container`, `crate::format`, … (re-exported in `lib.rs`).

#[path = "container/mod.rs"]
pub mod container;
#[path = "file.rs"]
pub mod file;
#[path = "format/mod.rs"]
pub mod format;
#[path = "mmap.rs"]
pub mod mmap;
#[path = "names.rs"]
pub mod names;
#[path = "pickle/mod.rs"]
pub mod pickle;
#[path = "walk.rs"]
pub mod walk;
