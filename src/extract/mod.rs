//! Safe extraction: the tensors of a pickle-based model file, rebuilt symbolically and written as
//! safetensors, without running anything from the file.
//!
//! Only the known array constructions are interpreted (torch's rebuild functions over storages,
//! numpy array reconstruction, joblib's inline arrays, `.npy`/`.npz`); every other object in the
//! graph is listed as dropped and never created. The file is scanned first and its findings are
//! reported; `--strict` extracts only clean files.
//!
//! The pipeline has a seam for other output formats: [`Source::open`] + [`Source::collect`] give an
//! [`Extraction`], a list of [`Tensor`]s (name, dtype, shape, and a [`ByteSource`] that yields the
//! bytes C-contiguous and little-endian in bounded chunks); the safetensors writer (`safetensors.rs`) is one consumer.
//!
//! Output is written to a temporary file beside the target and renamed into place at the end: a
//! failure leaves nothing behind, an existing file is never replaced without `force`. The data
//! are streamed: the header is planned first (with a placeholder for the input's digest), then
//! each tensor is written in file order: spans of the input as they stand are copied file to file
//! by the kernel (`copy_file_range`), other tensors (strided views, big-endian data, inflated
//! members) are gathered in bounded chunks. Meanwhile a second thread hashes the input, reading
//! it in order with `pread` (not through the mapping, whose touched pages would count as the
//! process's memory). Peak memory stays at a few chunks, whatever the model size.

mod formats;
mod ggml;
pub mod graph;
mod hdf5;
pub mod hf;
pub mod names;
pub mod numpy;
mod onnx;
pub(crate) mod output;
pub mod safetensors;
pub mod tensor;
pub mod to_gguf;
pub mod torch;

pub use graph::Leaf;
pub use output::remove_temp_files;
use output::{write_output, Hasher};
pub use tensor::{Backing, ByteSource, DType, Region, Tensor};

use crate::file::FileOptions;
use crate::finding::Verdict;
use crate::format::Format;
use crate::limits::Limits;
use crate::report::{FileReport, Gate};
use crate::scan::Scanner;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes copied per step when a tensor has to pass through memory (strided, byte-swapped or
/// inflated data): bounds the extra memory of extraction.
pub const CHUNK: usize = 4 << 20;

/// What to extract and how to write it.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Output path; default: the input's path with the extension `.safetensors`.
    pub output: Option<PathBuf>,
    /// Keep only the sub-tree under this dotted name (`state_dict`).
    pub select: Option<String>,
    /// Refuse a file whose scan verdict is not clean.
    pub strict: bool,
    /// Replace an existing output file.
    pub force: bool,
    /// Leave out tensors whose dtype the output cannot hold instead of failing.
    pub skip_unsupported: bool,
    /// Do not hash the input: the output's metadata then has no `source_sha256`. Hashing reads
    /// the whole input a second time and SHA-256 is slower than a file copy, so it bounds the
    /// speed of extraction (see benches/EXTRACT.md).
    pub no_source_hash: bool,
    /// Output format.
    pub to: OutputFormat,
    /// GGUF only: convert the float tensors to this type.
    pub quant: Option<crate::quant::GgmlType>,
    /// GGUF only: `general.architecture` (default `unknown`).
    pub arch: Option<String>,
    /// Counts the tensor bytes written, for a progress display.
    pub progress: Progress,
}

/// Tensor bytes written so far, and in all: shared between the extraction and whoever shows
/// progress (cheap to clone; updated once per tensor).
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<ProgressCounts>);

#[derive(Debug, Default)]
struct ProgressCounts {
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// Bytes written so far.
    pub fn done(&self) -> u64 {
        self.0.done.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Bytes to write in all (0 until the tensors are known).
    pub fn total(&self) -> u64 {
        self.0.total.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn set_total(&self, n: u64) {
        self.0.total.store(n, std::sync::atomic::Ordering::Relaxed);
    }
    fn add(&self, n: u64) {
        self.0
            .done
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The file format extraction writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// safetensors (default).
    #[default]
    Safetensors,
    /// GGUF v3.
    Gguf,
}

impl OutputFormat {
    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Safetensors => "safetensors",
            OutputFormat::Gguf => "gguf",
        }
    }
}

/// Something in the file that is not written, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// Flattened name.
    pub name: String,
    /// What it is.
    pub what: String,
}

/// The tensors of a file, ready for a writer.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// What the content was read as.
    pub format: Format,
    /// The tensors, in the order they were found.
    pub tensors: Vec<Tensor>,
    /// Tensors left out because the output cannot hold them (only with `skip_unsupported`).
    pub skipped: Vec<Dropped>,
    /// Non-tensor values and objects that were not created.
    pub dropped: Vec<Dropped>,
}

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The input could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Input.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The content is not something extraction understands, or is inconsistent.
    #[error("{0}")]
    Format(String),
    /// A tensor of the pickle cannot be rebuilt as torch or numpy would rebuild it.
    #[error("tensor {0}")]
    Rebuild(#[from] graph::RebuildError),
    /// `strict` and the scan verdict is not clean.
    #[error(
        "refused: the scan verdict is {verdict}, and strict extraction takes only clean files"
    )]
    NotClean {
        /// The verdict.
        verdict: Verdict,
    },
    /// The output exists and `force` was not given.
    #[error("{0} exists")]
    Exists(PathBuf),
    /// The output would be the input.
    #[error("the output {0} is the input file")]
    SameFile(PathBuf),
    /// Several tensors would get the same name.
    #[error("several tensors would be named {}", .0.join(", "))]
    Duplicates(Vec<String>),
    /// Tensors the output cannot hold.
    #[error("{}", unsupported_message("safetensors", .0))]
    Unsupported(Vec<Dropped>),
    /// Tensors a GGUF file cannot hold.
    #[error("{}", unsupported_message("GGUF", .0))]
    UnsupportedGguf(Vec<Dropped>),
    /// The selected key matched nothing.
    #[error("'{key}': nothing is named so; top-level names: {}", .available.join(", "))]
    Select {
        /// The key.
        key: String,
        /// The top-level names there are.
        available: Vec<String>,
    },
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Output (or its temporary file).
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

fn unsupported_message(format: &str, list: &[Dropped]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|d| format!("'{}' ({})", d.name, d.what))
        .collect();
    format!(
        "{format} cannot hold {} tensor(s): {}",
        list.len(),
        items.join(", ")
    )
}

impl ExtractError {
    /// The gate: the scan's verdict when only clean files were to be extracted and this one was
    /// not, an error for every other failure.
    pub fn gate(&self) -> Gate {
        match self {
            ExtractError::NotClean {
                verdict: Verdict::Dangerous,
            } => Gate::Dangerous,
            ExtractError::NotClean { .. } => Gate::Suspicious,
            _ => Gate::Error,
        }
    }
}

/// What a successful extraction wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The output file.
    pub output: PathBuf,
    /// What the input was read as.
    pub format: Format,
    /// `(name, dtype, shape)` of each tensor written, in file order.
    pub tensors: Vec<(String, DType, Vec<u64>)>,
    /// Bytes of the output file.
    pub bytes: u64,
    /// Tensors left out (`skip_unsupported`).
    pub skipped: Vec<Dropped>,
    /// Everything else that was not written.
    pub dropped: Vec<Dropped>,
    /// SHA-256 of the input.
    pub source_sha256: String,
    /// Remarks about the conversion (type fallbacks).
    pub notes: Vec<String>,
    /// GGUF: the type each tensor was written as, in file order.
    pub gguf_types: Vec<crate::quant::GgmlType>,
}

/// The scan report (when the scan ran) and the extraction's result.
#[derive(Debug)]
pub struct Outcome {
    /// The scan of the input.
    pub scan: Option<FileReport>,
    /// What was written, or why not.
    pub result: Result<Written, ExtractError>,
}

impl Outcome {
    /// Pass when the output was written, else [`ExtractError::gate`].
    pub fn gate(&self) -> Gate {
        match &self.result {
            Ok(_) => Gate::Pass,
            Err(e) => e.gate(),
        }
    }
}

/// Scan `input` (with the engine's policy), then extract its tensors into a safetensors or
/// GGUF file.
pub fn extract(engine: &crate::engine::Engine, input: &Path, opts: &ExtractOptions) -> Outcome {
    let scanner = &engine.scanner;
    let output = match output_path(input, opts) {
        Ok(o) => o,
        Err(e) => {
            return Outcome {
                scan: None,
                result: Err(e),
            }
        }
    };
    // One mapping of the input: what is extracted is what was scanned.
    let (scan, opened) = engine.open_and_scan(input, &FileOptions { hash: false });
    if let Some(e) = &scan.error {
        return Outcome {
            scan: Some(scan.clone()),
            result: Err(ExtractError::Format(format!("cannot extract: {e}"))),
        };
    }
    let verdict = scan.verdict;
    let result = match opened {
        _ if opts.strict && verdict != Verdict::Clean => Err(ExtractError::NotClean { verdict }),
        Some((bytes, file)) => {
            let source = Source::opened(input, bytes, file);
            extract_scanned(scanner, source, input, &output, verdict, opts)
        }
        // A file that could not be opened has a report with an error, answered above.
        None => Err(ExtractError::Format(
            "cannot extract: the input was not read".into(),
        )),
    };
    Outcome {
        scan: Some(scan),
        result,
    }
}

fn output_path(input: &Path, opts: &ExtractOptions) -> Result<PathBuf, ExtractError> {
    let default_name = || {
        let name = input
            .file_name()
            .map(Path::new)
            .unwrap_or(Path::new("output"));
        name.with_extension(opts.to.extension())
    };
    let output = match &opts.output {
        // An existing folder receives NAME.safetensors (or NAME.gguf), as `cp FILE DIR` does.
        Some(o) if o.is_dir() => o.join(default_name()),
        Some(o) => o.clone(),
        None => input.with_extension(opts.to.extension()),
    };
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(ExtractError::SameFile(output));
        }
    }
    if !opts.force && output.symlink_metadata().is_ok() {
        return Err(ExtractError::Exists(output));
    }
    Ok(output)
}

fn extract_scanned(
    scanner: &Scanner,
    source: Source,
    input: &Path,
    output: &Path,
    verdict: Verdict,
    opts: &ExtractOptions,
) -> Result<Written, ExtractError> {
    if opts.to == OutputFormat::Gguf {
        let unsupported = opts.skip_unsupported;
        let collect_opts = ExtractOptions {
            skip_unsupported: true,
            ..opts.clone()
        };
        let mut extraction = source.collect(scanner, &collect_opts)?;
        let (planned, refused, notes) = to_gguf::plan(&extraction.tensors, opts.quant);
        extraction.skipped.extend(refused);
        if !extraction.skipped.is_empty() && !unsupported {
            return Err(ExtractError::UnsupportedGguf(extraction.skipped));
        }
        return write_gguf_file(
            &source, extraction, planned, notes, input, output, verdict, opts,
        );
    }
    let extraction = source.collect(scanner, opts)?;
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert("scan_verdict".to_string(), verdict.to_string());
    let hasher = if opts.no_source_hash {
        Hasher::none(input)
    } else {
        metadata.insert(SOURCE_SHA256.to_string(), "0".repeat(64));
        Hasher::of_input(input, &source.backing)
    };
    let mut writer =
        safetensors::SafetensorsFile::new(&extraction.tensors, &metadata, &opts.progress);
    let (bytes, digest) = write_output(output, opts.force, &mut writer, hasher)?;
    Ok(Written {
        output: output.to_path_buf(),
        format: extraction.format.clone(),
        source_sha256: digest.unwrap_or_default(),
        tensors: writer.written(),
        bytes,
        skipped: extraction.skipped,
        dropped: extraction.dropped,
        notes: Vec::new(),
        gguf_types: Vec::new(),
    })
}

/// The safetensors metadata key of the input's SHA-256.
pub const SOURCE_SHA256: &str = "source_sha256";

/// The GGUF output: metadata, tensors (converted as planned), the input's digest patched in
/// at the end; same temporary-file protocol as safetensors.
#[allow(clippy::too_many_arguments)]
fn write_gguf_file(
    source: &Source,
    extraction: Extraction,
    planned: Vec<to_gguf::Planned>,
    notes: Vec<String>,
    input: &Path,
    output: &Path,
    verdict: Verdict,
    opts: &ExtractOptions,
) -> Result<Written, ExtractError> {
    use crate::format::gguf::Value;
    let name = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let file_type = match opts.quant {
        Some(q) => q.file_type(),
        None => to_gguf::guessed_file_type(&extraction.tensors, &planned),
    };
    let mut kvs: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            opts.arch.as_deref().unwrap_or("unknown").into(),
        ),
        ("general.name".into(), name.as_str().into()),
        ("general.file_type".into(), Value::U32(file_type)),
        (
            "general.alignment".into(),
            Value::U32(crate::format::gguf::DEFAULT_ALIGNMENT),
        ),
    ];
    if planned.iter().any(|p| p.ty.is_quantized()) {
        kvs.push((
            "general.quantization_version".into(),
            Value::U32(crate::format::gguf::QUANTIZATION_VERSION),
        ));
    }
    kvs.push((
        to_gguf::VERDICT_KEY.into(),
        verdict.to_string().as_str().into(),
    ));
    kvs.push((
        to_gguf::FORMAT_KEY.into(),
        extraction.format.to_string().as_str().into(),
    ));
    if !opts.no_source_hash {
        kvs.push((to_gguf::SHA_KEY.into(), "0".repeat(64).as_str().into()));
    }
    let hasher = if opts.no_source_hash {
        Hasher::none(input)
    } else {
        Hasher::of_input(input, &source.backing)
    };
    let mut writer = to_gguf::GgufFile::new(&extraction, &planned, kvs, &opts.progress);
    let (len, digest) = write_output(output, opts.force, &mut writer, hasher)?;
    let tensors = planned
        .iter()
        .map(|p| {
            let t = &extraction.tensors[p.index];
            (t.name.clone(), t.dtype, t.shape.clone())
        })
        .collect();
    Ok(Written {
        output: output.to_path_buf(),
        format: extraction.format,
        tensors,
        bytes: len,
        skipped: extraction.skipped,
        dropped: extraction.dropped,
        source_sha256: digest.unwrap_or_default(),
        notes,
        gguf_types: planned.iter().map(|p| p.ty).collect(),
    })
}

/// Write the tensor data of a safetensors file in file order, after room for its header, each
/// tensor through [`ByteSource::write_to`] (file to file by the kernel when `W` is a `File`).
pub fn write_in_order<W: Write + Seek>(
    plan: &safetensors::Layout,
    tensors: &[Tensor],
    out: &mut W,
    progress: &Progress,
) -> io::Result<()> {
    out.seek(SeekFrom::Start(plan.head.len() as u64))?;
    for &i in &plan.order {
        let t = &tensors[i];
        t.source
            .write_to(out, CHUNK)
            .map_err(|e| io::Error::new(e.kind(), format!("tensor '{}': {e}", t.name)))?;
        progress.add(t.source.nbytes());
    }
    Ok(())
}

/// Keeps a mapped (or, when small, read) input alive behind a [`Backing`].
struct InputBytes(crate::mmap::Input);

impl AsRef<[u8]> for InputBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

/// The backing of a file opened (mapped or read) through `file`. A mapped file's contiguous
/// spans are copied file to file through the same handle; a file read into memory (a small one,
/// a pipe) is copied from memory.
fn backing_of(bytes: crate::mmap::Input, file: File) -> Backing {
    let mapped = bytes.is_mapped();
    let data: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(InputBytes(bytes));
    if mapped {
        Backing::file(data, Arc::new(file), 0)
    } else {
        Backing::memory(data)
    }
}

/// A file's bytes with its handle, for ranges copied file to file.
fn open_backing(path: &Path) -> io::Result<Backing> {
    let (bytes, file) = crate::mmap::Input::open_with_file(path)?;
    Ok(backing_of(bytes, file))
}

/// An input file opened for extraction.
pub struct Source {
    path: PathBuf,
    backing: Backing,
}

impl Source {
    /// Open (memory-map) a file.
    pub fn open(path: &Path) -> Result<Source, ExtractError> {
        let (bytes, file) =
            crate::mmap::Input::open_with_file(path).map_err(|source| ExtractError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self::opened(path, bytes, file))
    }

    /// A file already opened (mapped or read) through `file`.
    fn opened(path: &Path, bytes: crate::mmap::Input, file: File) -> Source {
        Source {
            path: path.to_path_buf(),
            backing: backing_of(bytes, file),
        }
    }

    /// Bytes already in memory (tests, decompressed streams).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Source {
        Source {
            path: PathBuf::from(name),
            backing: Backing::owned(bytes),
        }
    }

    /// Find the tensors: interpret the content, apply `select`, check names and dtypes.
    pub fn collect(
        &self,
        scanner: &Scanner,
        opts: &ExtractOptions,
    ) -> Result<Extraction, ExtractError> {
        let (format, mut leaves) = formats::leaves(scanner, &self.path, &self.backing)?;
        if let Some(key) = &opts.select {
            leaves = names::select(leaves, key).map_err(|available| ExtractError::Select {
                key: key.clone(),
                available,
            })?;
        }
        let mut tensors = Vec::new();
        let mut unsupported = Vec::new();
        let mut dropped = Vec::new();
        for leaf in leaves {
            match leaf {
                Leaf::Tensor {
                    name,
                    elem,
                    shape,
                    source,
                } => tensors.push(Tensor {
                    name,
                    dtype: elem,
                    shape,
                    source,
                }),
                Leaf::Unsupported { name, what } => unsupported.push(Dropped { name, what }),
                Leaf::Dropped { name, what } => dropped.push(Dropped { name, what }),
            }
        }
        let dups = names::duplicates(
            tensors
                .iter()
                .map(|t| t.name.as_str())
                .chain(unsupported.iter().map(|d| d.name.as_str())),
        );
        if !dups.is_empty() {
            return Err(ExtractError::Duplicates(dups));
        }
        if !unsupported.is_empty() && !opts.skip_unsupported {
            return Err(ExtractError::Unsupported(unsupported));
        }
        check_output_size(&scanner.limits, &tensors, self.backing.bytes().len() as u64)?;
        opts.progress.set_total(
            tensors
                .iter()
                .map(|t| t.source.nbytes())
                .fold(0, u64::saturating_add),
        );
        Ok(Extraction {
            format,
            tensors,
            skipped: unsupported,
            dropped,
        })
    }
}

/// A view may read its storage's bytes many times over (a stride of 0 from `expand`,
/// overlapping strides), so a small file can describe tensors of terabytes. What extraction
/// writes is bounded by the input's size the way decompression is: at most `max_ratio` times
/// the input, or `ratio_floor` for small inputs. Real models write about their own size (tied
/// weights twice); a compressed joblib dump writes up to its compression ratio.
fn check_output_size(limits: &Limits, tensors: &[Tensor], input: u64) -> Result<(), ExtractError> {
    let written = tensors
        .iter()
        .map(|t| t.source.nbytes())
        .fold(0u64, u64::saturating_add);
    let allowed = limits
        .ratio_floor
        .max(input.saturating_mul(limits.max_ratio));
    if written > allowed {
        return Err(ExtractError::Format(format!(
            "refused by the ratio cap: the tensors would write {written} bytes from {input} bytes \
             of input, more than {}× (and more than the {} bytes allowed whatever the ratio); \
             views that repeat their storage's bytes, or highly compressed data such as an \
             array of zeros, reach this; --max-ratio (config key max_ratio) raises the cap",
            limits.max_ratio, limits.ratio_floor
        )));
    }
    Ok(())
}

/// How many dropped entries the text summary lists before only counting them.
const LISTED_DROPPED: usize = 40;

/// A text summary of what was written.
pub fn render_written(w: &Written) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "extracted {} ({}) from {} to {}",
        crate::report::text::plural(w.tensors.len() as u64, "tensor"),
        crate::report::text::plural(w.bytes, "byte"),
        w.format,
        w.output.display()
    );
    for n in &w.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    for s in &w.skipped {
        let _ = writeln!(out, "  skipped {}: {}", s.name, s.what);
    }
    if !w.dropped.is_empty() {
        let _ = writeln!(out, "  not extracted (never created or not a tensor):");
        for d in w.dropped.iter().take(LISTED_DROPPED) {
            let _ = writeln!(out, "    {}: {}", d.name, d.what);
        }
        if w.dropped.len() > LISTED_DROPPED {
            let _ = writeln!(out, "    … and {} more", w.dropped.len() - LISTED_DROPPED);
        }
    }
    out
}
