//! Containers: recognise what a file is by its content and find every pickle a loader would run.
//!
//! Detection never trusts the file name: magic bytes decide, and the name only breaks ties (see
//! [`crate::format::detect`]). Each format has a module that knows how its loader reads it:
//!
//! | kind | module | what is scanned |
//! |---|---|---|
//! | zip (torch, TorchScript, npz, any zip) | [`zip`] reader, [`torch`] member policy | every member that is a pickle or a container; tensor storages skipped |
//! | torch legacy (five pickles + raw storages) | [`torch`] | all five pickles; storages skipped by their recorded sizes |
//! | tar (torch ≤ 0.1.10, any tar) | [`crate::format::tar`], [`torch`] | `pickle`, `storages`, `tensors` pickles; other members by content |
//! | joblib, raw pickle | [`crate::format::joblib`] hooks | every stream; inline arrays skipped, object arrays scanned |
//! | gzip/zlib/bz2/xz/lzma/lz4, joblib z-file | [`compress`] | decompressed under a budget, then detected again |
//! | numpy `.npy` | [`crate::format::npy`] header; [`npy`] | object arrays (a pickle); plain arrays checked for size |
//! | safetensors, GGUF | [`crate::format::safetensors`], [`crate::format::gguf`] readers; [`safetensors`], [`gguf`] judge | structure validated, GGUF chat templates judged; never code |
//!
//! Findings raised here use the ids in [`ids`]; a finding inside an archive member carries the
//! member's name ([`Finding::in_member`]), and offsets are relative to the member's (or the
//! decompressed stream's) bytes. Offsets of zip structure findings are file offsets.

pub mod formats;
pub mod ggml;
pub mod gguf;
pub mod hdf5;
pub mod hf;

pub mod keras;
pub mod keras_lambda;
pub mod not_model;
pub mod npy;
pub mod onnx;
pub mod pmml;
pub mod safetensors;
pub mod savedmodel;
pub mod sevenz;
pub mod skops;
pub mod template;
pub mod torch;
pub mod torchscript;
pub mod weights_only;

use crate::finding::Finding;
use crate::format::access::{Missing, RandomAccess};
use crate::format::compress::{self, Codec};
use crate::format::{zip, Format};
use crate::pickle::opcode::Opcode;
use crate::pickle::vm::EventKind;
use crate::scan::Scanner;
use std::cell::{Cell, RefCell};
use weights_only::WeightsOnly;

use crate::format::detect::{detect, Kind};

/// Rule ids: the one registry, [`crate::rules::ids`].
pub use crate::rules::ids;

/// The result of scanning one piece of content.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// What the content was found to be.
    pub format: Format,
    /// Everything found.
    pub findings: Vec<Finding>,
}

/// State shared by the whole scan of one file.
pub(crate) struct Ctx<'s> {
    pub scanner: &'s Scanner,
    /// Decompression budget left for the whole file.
    pub decompress_left: Cell<u64>,
    /// Torch archives entered through `torch.storage._load_from_bytes` so far (bounded by
    /// the container depth limit).
    pub nested_loads: Cell<usize>,
    /// Companion files joblib < 0.10 dumps name (offset of the wrapper, file name as written):
    /// read from the dump's folder by `joblib.load`, scanned by [`crate::file`] as part of it.
    pub companions: RefCell<Vec<(u64, String)>>,
    /// The folder the scanned file is in, when it is a file on disk: formats that refer to files
    /// beside them (ONNX external data, Hugging Face `auto_map` code) are checked against it.
    pub dir: Option<&'s std::path::Path>,
    /// What `torch.load(weights_only=True)` does with the file, once the part of the scan that
    /// reads the file as torch would has worked it out (only when the scanner is asked for it).
    pub weights_only: RefCell<Option<WeightsOnly>>,
    /// The part of the file at hand, when the scan runs on part of it (a remote file's fetched
    /// ranges): readers that can tell record here what they needed and did not have.
    pub image: Option<&'s dyn RandomAccess>,
    /// Ranges the scan needed that `image` lacks.
    pub missing: RefCell<Vec<Missing>>,
}

impl<'s> Ctx<'s> {
    /// The state of one file's scan: `decompress_left` bytes may still be inflated, `dir` is
    /// the file's folder when it is on disk.
    pub fn new(
        scanner: &'s Scanner,
        decompress_left: u64,
        dir: Option<&'s std::path::Path>,
    ) -> Self {
        Ctx {
            scanner,
            decompress_left: Cell::new(decompress_left),
            nested_loads: Cell::new(0),
            companions: RefCell::new(Vec::new()),
            dir,
            weights_only: RefCell::new(None),
            image: None,
            missing: RefCell::new(Vec::new()),
        }
    }

    /// Whether zip member `e` of the file itself (`depth` 0) is at hand to be read (whole, or
    /// its first `head` bytes). Always, on a whole file; on part of one, what is missing is
    /// recorded for the caller to fetch before scanning again.
    pub fn has_member(
        &self,
        depth: usize,
        archive: &zip::Archive<'_>,
        e: &zip::Entry,
        head: Option<usize>,
    ) -> bool {
        let Some(image) = self.image.filter(|_| depth == 0) else {
            return true;
        };
        match archive.missing_in(image, e, head) {
            None => true,
            Some(m) => {
                self.missing.borrow_mut().push(m);
                false
            }
        }
    }

    /// Whether bytes `[start, end)` of the file itself are at hand ([`Ctx::has_member`]).
    pub fn has_range(&self, depth: usize, start: u64, end: u64) -> bool {
        let Some(image) = self.image.filter(|_| depth == 0) else {
            return true;
        };
        match image.get(start, end) {
            Ok(_) => true,
            Err(m) => {
                self.missing.borrow_mut().push(m);
                false
            }
        }
    }

    /// Whether content at `depth` is what `torch.load` reads and the scanner models it: the
    /// file itself, with `Scanner::weights_only` set.
    pub fn models_torch_load(&self, depth: usize) -> bool {
        depth == 0 && self.scanner.weights_only
    }

    pub fn anomaly(&self, id: &str, offset: Option<u64>, message: String) -> Finding {
        self.scanner.anomaly(id, offset, message)
    }

    /// What a scan says of content it could not read (or may not look into): its format and
    /// one finding, at offset 0.
    pub fn unread(&self, format: Format, id: &str, message: String) -> Scanned {
        Scanned {
            format,
            findings: vec![self.anomaly(id, Some(0), message)],
        }
    }

    /// Output budget for one stream or member of `compressed` bytes: what is left of the file's
    /// budget, within the per-stream ratio cap ([`crate::Limits::inflate_budget`]). The output is
    /// held in memory, so this cap, not `max_decompressed`, is what bounds a bomb's memory and time.
    pub fn budget(&self, compressed: u64) -> u64 {
        self.decompress_left
            .get()
            .min(self.scanner.limits.inflate_budget(compressed))
    }

    /// Why a budget of `budget` bytes for `compressed` input bytes is what it is, for a finding.
    pub fn budget_reason(&self, budget: u64, compressed: u64) -> String {
        let l = &self.scanner.limits;
        if budget < l.max_decompressed && budget == l.inflate_budget(compressed) {
            format!(
                "more than {budget} bytes from {compressed} compressed (ratio cap {}×, floor {} bytes): a decompression bomb, or data too repetitive to scan (--max-ratio, config key max_ratio, raises the cap)",
                l.max_ratio, l.ratio_floor
            )
        } else {
            format!("more than {budget} bytes (decompression budget of the file)")
        }
    }

    pub fn spend(&self, n: u64) {
        self.decompress_left
            .set(self.decompress_left.get().saturating_sub(n));
    }
}

/// Scan `data` (a whole file's content) with `scanner`: detect, dispatch, scan every pickle a
/// loader would run. `name` is the file name (ties only).
pub fn scan(scanner: &Scanner, data: &[u8], name: Option<&str>) -> Scanned {
    scan_in(scanner, data, name, None)
}

/// [`scan`] for a file in the folder `dir`, whose neighbours some formats refer to.
pub fn scan_in(
    scanner: &Scanner,
    data: &[u8],
    name: Option<&str>,
    dir: Option<&std::path::Path>,
) -> Scanned {
    scan_file(scanner, data, name, dir).scanned
}

/// What [`scan_file`] found in a file.
pub struct FileScan {
    /// The format and the findings.
    pub scanned: Scanned,
    /// The companion files a joblib < 0.10 dump names (offset, name as written): each has a
    /// PS942 finding that the caller, knowing the dump's folder, may replace by the
    /// companion's own scan.
    pub companions: Vec<(u64, String)>,
    /// What `torch.load(weights_only=True)` does with the file, when the scanner models it.
    pub weights_only: Option<WeightsOnly>,
    /// What the readers needed and did not have ([`scan_image`]; empty for a whole file).
    pub missing: Vec<Missing>,
}

/// [`scan_in`], with the companion files and the weights-only answer.
pub fn scan_file(
    scanner: &Scanner,
    data: &[u8],
    name: Option<&str>,
    dir: Option<&std::path::Path>,
) -> FileScan {
    let ctx = Ctx::new(scanner, scanner.limits.max_decompressed, dir);
    scan_with(ctx, data, name)
}

/// [`scan_file`] of the part of a file at hand: `data` is the whole file with what is missing
/// as zeros, `image` tells what is there. `FileScan::missing` lists what the readers needed
/// and did not have: the caller fetches it and scans again; until then the findings say the
/// file is not fully read.
pub fn scan_image(
    scanner: &Scanner,
    data: &[u8],
    image: &dyn RandomAccess,
    name: Option<&str>,
) -> FileScan {
    let mut ctx = Ctx::new(scanner, scanner.limits.max_decompressed, None);
    ctx.image = Some(image);
    scan_with(ctx, data, name)
}

fn scan_with(ctx: Ctx<'_>, data: &[u8], name: Option<&str>) -> FileScan {
    let scanner = ctx.scanner;
    let scanned = scan_content(&ctx, data, name, 0);
    // Parts of the scan that read the file as torch does leave their answer; for the rest
    // (other formats, content the scan could not follow) torch's reading is replayed alone.
    let weights_only = scanner.weights_only.then(|| {
        ctx.weights_only
            .take()
            .unwrap_or_else(|| weights_only::check_with(data, &scanner.limits))
    });
    FileScan {
        scanned,
        companions: ctx.companions.into_inner(),
        weights_only,
        missing: ctx.missing.into_inner(),
    }
}

/// True when `data` starts like torch's legacy format (magic number, protocol, sys_info
/// pickles): its scanner skips raw storages by the sizes the pickles record.
pub fn looks_torch_legacy(scanner: &Scanner, data: &[u8]) -> bool {
    let ctx = Ctx::new(scanner, scanner.limits.max_decompressed, None);
    torch::looks_legacy(&ctx, data)
}

/// Scan content at container nesting `depth` (0 for the file itself).
pub(crate) fn scan_content(
    ctx: &Ctx<'_>,
    data: &[u8],
    name: Option<&str>,
    depth: usize,
) -> Scanned {
    if depth > ctx.scanner.limits.max_container_depth {
        return ctx.unread(
            Format::Nested,
            ids::NESTED_DEPTH,
            format!(
                "containers nested more than {} deep: the inner content is not scanned",
                ctx.scanner.limits.max_container_depth
            ),
        );
    }
    let kind = detect(data, name);
    match kind {
        Kind::Zip => torch::scan_zip(ctx, data, depth),
        Kind::Npy => npy::scan(ctx, data, depth),
        Kind::Safetensors => with_polyglot_check(ctx, data, safetensors::scan(ctx, data)),
        Kind::Gguf => with_polyglot_check(ctx, data, gguf::scan(ctx, data)),
        Kind::TorchLegacy => torch::scan_pickle_file(ctx, data, depth),
        // A protocol 2+ header is a pickle whatever follows.
        Kind::Pickle if data[0] == 0x80 => torch::scan_pickle_file(ctx, data, depth),
        // A protocol 0/1 opcode first is a pickle only if the bytes act as one. Text and images
        // often start with an opcode byte (`(`, `c`, `P`, `\x89`): a loader would stop at once,
        // having run nothing.
        Kind::Pickle => {
            let (vm, run) = ctx.scanner.run_one(data, &mut crate::pickle::vm::NoHooks);
            if run.error.is_some() && runs_nothing(&vm) {
                if let Some(what) = not_model::classify(data, name) {
                    return not_a_model(what);
                }
            }
            if acts(&vm, &run) {
                return torch::scan_pickle_file(ctx, data, depth);
            }
            let why = run.error.map(|e| e.to_string()).unwrap_or_default();
            let message = format!("content of no known model format: it starts with a pickle opcode but breaks at once ({why})");
            ctx.unread(Format::Unknown, ids::UNRECOGNISED, message)
        }
        Kind::Tar => torch::scan_tar(ctx, data, depth),
        Kind::Format(f) => formats::scan(ctx, f, data, name, depth),
        Kind::Compressed(codec) => scan_compressed(ctx, codec, data, name, depth),
        Kind::Unscannable(what) => ctx.unread(
            what.clone(),
            ids::UNSCANNABLE,
            format!("{what} content cannot be looked into: not proven safe"),
        ),
        Kind::Empty | Kind::Unknown => match not_model::classify(data, name) {
            Some(what) => not_a_model(what),
            None => unrecognised(ctx, kind, data),
        },
    }
}

/// The report of content no reader recognises under a name that claims a model format.
fn unrecognised(ctx: &Ctx<'_>, kind: Kind, data: &[u8]) -> Scanned {
    let message = if kind == Kind::Empty {
        "empty content: no model format".to_string()
    } else {
        format!(
            "content of no known model format (starts with {})",
            crate::format::hex(&data[..data.len().min(8)])
        )
    };
    ctx.unread(kind.format(), ids::UNRECOGNISED, message)
}

/// The report of content that is not a model: no findings, its own format name.
fn not_a_model(what: &'static str) -> Scanned {
    Scanned {
        format: Format::NotAModel(what),
        findings: Vec::new(),
    }
}

/// True when a stream that broke before STOP ran nothing a loader would act on: no call, no
/// state, no import of an importable name (a module import runs the module's code). A persistent
/// id (`P` followed by a line) only reaches the loader's `persistent_load`, which refuses text.
fn runs_nothing(vm: &crate::pickle::vm::Vm<'_>) -> bool {
    vm.events().iter().all(|e| match e.kind {
        EventKind::Import => vm.as_global(e.subject).is_none_or(|g| {
            !(crate::names::is_dotted_identifier(&g.module)
                && crate::names::is_dotted_identifier(&g.name))
        }),
        EventKind::PersistentId | EventKind::FrameAnomaly => true,
        _ => false,
    })
}

/// A data format that some loaders would hand to `pickle.load` instead (torch.load picks by
/// content, not by name, for anything that is not a zip): if its bytes also run as a pickle that
/// does something, scan that pickle too.
fn with_polyglot_check(ctx: &Ctx<'_>, data: &[u8], mut scanned: Scanned) -> Scanned {
    if let Some(mut findings) = speculative_pickle(ctx, data) {
        scanned.findings.push(ctx.anomaly(
            ids::UNRECOGNISED,
            Some(0),
            format!(
                "the {} file is also a pickle that acts when loaded with pickle/torch.load",
                scanned.format
            ),
        ));
        scanned.findings.append(&mut findings);
    }
    scanned
}

/// Scan `data` as a pickle only if it is one that would do something: it runs to STOP, or it
/// calls, builds or loads something before breaking. `None` for data that merely starts with an
/// opcode byte.
pub(crate) fn speculative_pickle(ctx: &Ctx<'_>, data: &[u8]) -> Option<Vec<Finding>> {
    if acts_as_pickle(ctx, data) {
        Some(torch::scan_pickles(ctx, data).findings)
    } else {
        None
    }
}

/// True when `data` runs as a pickle to STOP, or calls, builds or loads something before it
/// breaks: bytes a pickle loader would act on, as opposed to data that merely starts with a byte
/// that happens to be an opcode.
pub(crate) fn acts_as_pickle(ctx: &Ctx<'_>, data: &[u8]) -> bool {
    let Some(&first) = data.first() else {
        return false;
    };
    if Opcode::from_byte(first).is_none() {
        return false;
    }
    let (vm, run) = ctx.scanner.run_one(data, &mut crate::pickle::vm::NoHooks);
    acts(&vm, &run)
}

/// True when a run reached STOP, or called, built or loaded something before it broke. A
/// persistent id alone is not acting: it only reaches the loader's `persistent_load` (which
/// plain pickle does not have and torch's refuses for anything but a storage tuple). A
/// safetensors header length whose low byte is `P` (0x50) starts such a "pickle".
fn acts(vm: &crate::pickle::vm::Vm<'_>, run: &crate::pickle::vm::Run) -> bool {
    run.error.is_none()
        || vm.events().iter().any(|e| {
            !matches!(
                e.kind,
                EventKind::Import | EventKind::FrameAnomaly | EventKind::PersistentId
            )
        })
}

fn scan_compressed(
    ctx: &Ctx<'_>,
    codec: Codec,
    data: &[u8],
    name: Option<&str>,
    depth: usize,
) -> Scanned {
    let budget = ctx.budget(data.len() as u64);
    let out = compress::decompress(codec, data, budget);
    scan_decompressed(
        ctx,
        codec,
        &out.data,
        out.error.as_ref(),
        data.len() as u64,
        name,
        depth,
    )
}

/// Scan `data`, what came out of decompressing a whole file of `compressed` bytes with `codec`
/// (`error`: why decompression stopped early, if it did): the findings [`scan`] makes over the
/// compressed file, for a caller that decompressed it as a stream.
pub fn scan_decompressed_file(
    scanner: &Scanner,
    codec: Codec,
    data: &[u8],
    error: Option<&compress::DecompressError>,
    compressed: u64,
    name: Option<&str>,
) -> Scanned {
    let ctx = Ctx::new(scanner, scanner.limits.max_decompressed, None);
    scan_decompressed(&ctx, codec, data, error, compressed, name, 0)
}

/// Scan `data`, what came out of decompressing `compressed` bytes with `codec` (`error`: why
/// it stopped early, if it did).
fn scan_decompressed(
    ctx: &Ctx<'_>,
    codec: Codec,
    data: &[u8],
    error: Option<&compress::DecompressError>,
    compressed: u64,
    name: Option<&str>,
    depth: usize,
) -> Scanned {
    ctx.spend(data.len() as u64);
    let mut findings = Vec::new();
    match error {
        None => {}
        Some(compress::DecompressError::Budget(b)) => findings.push(ctx.anomaly(
            ids::DECOMPRESSION_BUDGET,
            Some(0),
            format!(
                "{} stream decompresses to {}: only the first {} bytes are scanned",
                codec.name(),
                ctx.budget_reason(*b, compressed),
                data.len()
            ),
        )),
        Some(e) => findings.push(ctx.anomaly(ids::MALFORMED, Some(0), e.to_string())),
    }
    if data.is_empty() && error.is_some() {
        return Scanned {
            format: Format::BrokenStream(codec),
            findings,
        };
    }
    // What did come out is scanned even when the stream broke: a loader runs it before failing.
    let inner_name = name.map(|n| {
        n.rsplit_once('.')
            .map(|(stem, _)| stem.to_string())
            .unwrap_or_else(|| n.to_string())
    });
    // A z-file is what joblib < 0.10 wrote for a compressed dump (a pickle inside) or for one
    // array of a dump (`ZNDArrayWrapper`: raw array bytes inside, read only as that array's
    // data). Raw bytes that are no known format are that array data, never loaded as code.
    if codec == Codec::ZFile && error.is_none() && detect(data, None) == Kind::Unknown {
        return Scanned {
            format: Format::JoblibZFileArray,
            findings,
        };
    }
    let scanned = scan_content(ctx, data, inner_name.as_deref(), depth + 1);
    let format = match (codec, scanned.format) {
        (Codec::ZFile, _) => Format::JoblibCompressed(Codec::ZFile),
        (_, Format::Pickle | Format::Joblib) => Format::JoblibCompressed(codec),
        (_, inner) => Format::Compressed(codec, Box::new(inner)),
    };
    let capped = matches!(error, Some(compress::DecompressError::Budget(_)));
    findings.extend(scanned.findings.into_iter().map(|mut f| {
        // The stream was cut by the cap, not by the file: say so where the cut shows.
        if capped && f.rule == crate::scan::ids::TRUNCATED {
            f.message
                .push_str(" (where the decompression cap above cut the stream, not the file)");
        }
        f
    }));
    Scanned { format, findings }
}

/// Shift the offsets of findings by `by` (findings of a region scanned on its own).
pub(crate) fn shift(mut findings: Vec<Finding>, by: u64) -> Vec<Finding> {
    if by > 0 {
        for f in &mut findings {
            if let Some(o) = f.offset.as_mut() {
                *o += by;
            }
        }
    }
    findings
}
