//! A Hugging Face checkpoint folder converted to the GGUF llama.cpp runs, as
//! `convert_hf_to_gguf.py` (and `llama-quantize` for the mixes) would write it, without running
//! anything from the folder.
//!
//! The folder holds `config.json`, the weights (`model*.safetensors` or `pytorch_model*.bin`,
//! sharded with an `.index.json` or not) and the tokenizer. Every file is scanned first; the
//! weights are then read by the same readers as `--extract` (pickles by the symbolic machine),
//! renamed and regrouped for llama.cpp ([`arch`]), typed as the converter or the mix chooses,
//! and written with the tokenizer ([`vocab`]) and the naming keys ([`naming`]) through the
//! temporary-file protocol of every output. The chat templates copied are judged first by the
//! chat-template checks; a template that is not clean stops the conversion.

pub mod arch;
pub mod naming;
mod phi3;
pub mod vocab;

use super::output::{sha256_of, write_output, Hasher};
use super::{
    to_gguf::{self, Planned},
    ExtractError, ExtractOptions, Source, Tensor, Written,
};
use crate::engine::Engine;
use crate::file::FileOptions;
use crate::finding::Verdict;
use crate::format::gguf::Value;
use crate::format::Format;
use crate::quant::mix::{Mix, MixPlanner};
use crate::quant::GgmlType;
use crate::report::FileReport;
use crate::scan::Scanner;
use serde_json::Value as Json;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a folder could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// A file of the folder is not what its name says.
    #[error("{0}")]
    Invalid(String),
    /// Something this converter does not handle (an architecture, a tokenizer, a setting).
    #[error("{0}")]
    Unsupported(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl From<HfError> for ExtractError {
    fn from(e: HfError) -> Self {
        match e {
            HfError::Read { path, source } => ExtractError::Read { path, source },
            other => ExtractError::Format(other.to_string()),
        }
    }
}

/// What `--quant` asks of a folder conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One type for the weights, as `convert_hf_to_gguf.py --outtype` (F32, F16, BF16, Q8_0).
    Type(GgmlType),
    /// A `llama-quantize` mix, applied to what `--outtype f32` would give.
    Mix(Mix),
}

/// The scans of the folder's files and the conversion.
pub struct FolderOutcome {
    /// One report per file, in walk order.
    pub scans: Vec<FileReport>,
    /// The output, or why there is none.
    pub result: Result<Written, ExtractError>,
}

/// Most layers a `config.json` may claim (the largest published models have a few hundred):
/// per-layer work is bounded before any tensor is read.
const MAX_LAYERS: u64 = 4096;

/// A folder the converter reads: it has a `config.json`.
pub fn is_model_folder(path: &Path) -> bool {
    path.is_dir() && path.join("config.json").is_file()
}

/// Read a file of at most `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, HfError> {
    let read_err = |source| HfError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(read_err)?;
    if buf.len() as u64 > limit {
        return Err(HfError::Invalid(format!(
            "{} is larger than the {limit} bytes read",
            path.display()
        )));
    }
    Ok(buf)
}

/// A JSON file, `None` when it does not exist.
pub(crate) fn json_file(path: &Path, limit: u64) -> Result<Option<Json>, HfError> {
    if !path.is_file() {
        return Ok(None);
    }
    let data = read_limited(path, limit)?;
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| HfError::Invalid(format!("{}: {e}", path.display())))
}

/// `config.json`, with the converter's `find_hparam` lookups.
pub struct Config(serde_json::Map<String, Json>);

impl Config {
    /// A key's value.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.get(key)
    }
    /// The value of the first of `keys` present (`find_hparam`).
    pub fn first(&self, keys: &[&str]) -> Option<&Json> {
        keys.iter().find_map(|k| self.0.get(*k))
    }
    /// The first of `keys` present, as a count.
    pub fn uint(&self, keys: &[&str]) -> Option<u64> {
        self.first(keys).and_then(Json::as_u64)
    }
}

/// The weight files in the order the converter reads them (`index_tensors`): the parts an
/// index names, sorted, or `model*.safetensors` sorted, or `pytorch_model*.bin` sorted.
fn weight_files(dir: &Path) -> Result<(Vec<PathBuf>, bool), HfError> {
    let listed = |prefix: &str, suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
            .collect();
        v.sort();
        v
    };
    let mut parts = listed("model", ".safetensors");
    let safetensors = !parts.is_empty() || dir.join("model.safetensors.index.json").is_file();
    if !safetensors {
        parts = listed("pytorch_model", ".bin");
    }
    let index = dir.join(if safetensors {
        "model.safetensors.index.json"
    } else {
        "pytorch_model.bin.index.json"
    });
    if let Some(idx) = json_file(&index, 64 << 20)? {
        let map = idx
            .get("weight_map")
            .and_then(Json::as_object)
            .ok_or_else(|| HfError::Invalid(format!("{}: no weight_map", index.display())))?;
        let mut named: Vec<String> = map
            .values()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect();
        named.sort();
        named.dedup();
        parts = named;
    }
    if parts.is_empty() {
        return Err(HfError::Invalid(
            "no weights: the folder has neither model*.safetensors nor pytorch_model*.bin".into(),
        ));
    }
    let mut paths = Vec::new();
    for p in parts {
        // A part name from an index is a file of this folder, nothing else.
        if p.contains('/') || p.contains('\\') || p == ".." || p == "." {
            return Err(HfError::Invalid(format!(
                "{}: part {p:?} is not a file of the folder",
                index.display()
            )));
        }
        paths.push(dir.join(p));
    }
    Ok((paths, safetensors))
}

/// The checkpoint name the converter uses (`filter_tensors`): wrapper prefixes dropped.
fn checkpoint_name(name: &str) -> String {
    name.replace("text_model.", "")
        .replace("language_model.", "")
}

/// Scan every file of the folder.
fn scan_folder(engine: &Engine, dir: &Path) -> Vec<FileReport> {
    crate::walk::collect(&[dir.to_path_buf()], &crate::walk::WalkOptions::default())
        .into_iter()
        .filter_map(|e| match e {
            crate::walk::Entry::File(p) => Some(engine.scan_path(&p, &FileOptions { hash: false })),
            crate::walk::Entry::Error { path, message } => {
                Some(FileReport::unreadable(path.display().to_string(), message))
            }
            crate::walk::Entry::Stdin | crate::walk::Entry::Note { .. } => None,
        })
        .collect()
}

fn output_path(dir: &Path, opts: &ExtractOptions) -> Result<PathBuf, ExtractError> {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    let default = PathBuf::from(format!("{name}.gguf"));
    let output = match &opts.output {
        Some(o) if o.is_dir() => o.join(default),
        Some(o) => o.clone(),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.parent().map(|p| p.join(&default)))
            .unwrap_or(default),
    };
    if !opts.force && output.symlink_metadata().is_ok() {
        return Err(ExtractError::Exists(output));
    }
    Ok(output)
}

/// Scan the folder, then convert it.
pub fn convert_folder(
    engine: &Engine,
    dir: &Path,
    opts: &ExtractOptions,
    target: Target,
) -> FolderOutcome {
    let output = match output_path(dir, opts) {
        Ok(o) => o,
        Err(e) => {
            return FolderOutcome {
                scans: Vec::new(),
                result: Err(e),
            }
        }
    };
    let scans = scan_folder(engine, dir);
    let verdict = scans
        .iter()
        .map(|s| s.verdict)
        .max()
        .unwrap_or(Verdict::Clean);
    let result = if opts.strict && verdict != Verdict::Clean {
        Err(ExtractError::NotClean { verdict })
    } else if let Some(bad) = scans.iter().find(|s| s.error.is_some()) {
        Err(ExtractError::Format(format!(
            "cannot convert: {} could not be read: {}",
            bad.path,
            bad.error.as_deref().unwrap_or_default()
        )))
    } else {
        convert(&engine.scanner, dir, &output, verdict, opts, target)
    };
    FolderOutcome { scans, result }
}

fn convert(
    scanner: &Scanner,
    dir: &Path,
    output: &Path,
    verdict: Verdict,
    opts: &ExtractOptions,
    target: Target,
) -> Result<Written, ExtractError> {
    let mut config = match json_file(&dir.join("config.json"), 64 << 20)? {
        Some(Json::Object(m)) => Config(m),
        _ => return Err(HfError::Invalid("config.json is not a JSON object".into()).into()),
    };
    let hf_arch = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Json::as_str)
        .unwrap_or("");
    let Some(arch) = arch::Arch::of(hf_arch) else {
        let supported: Vec<String> = arch::HF_ARCHITECTURES
            .iter()
            .map(|(n, a)| format!("{n} ({})", a.name()))
            .collect();
        return Err(HfError::Unsupported(format!(
            "architecture {hf_arch:?} is not converted; supported: {}",
            supported.join(", ")
        ))
        .into());
    };
    let hf_arch = hf_arch.to_string();
    arch::complete_config(&hf_arch, &mut config);
    let hints = [
        folder_name(dir),
        config
            .get("_name_or_path")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string(),
    ];
    if arch == arch::Arch::Qwen3
        && hints
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("qwen3-reranker"))
    {
        return Err(HfError::Unsupported(
            "Qwen 3 rerankers are not converted (llama.cpp builds a classification head for them)"
                .into(),
        )
        .into());
    }
    let block_count = config
        .uint(&["n_layers", "num_hidden_layers", "n_layer", "num_layers"])
        .ok_or_else(|| HfError::Invalid("config.json has no num_hidden_layers".into()))?;
    if block_count > MAX_LAYERS {
        return Err(HfError::Invalid(format!(
            "config.json claims {block_count} layers (at most {MAX_LAYERS} are converted)"
        ))
        .into());
    }
    let heads = arch::Heads::of(&config)?;

    // The tensors, in the converter's order: generated ones, then each part's.
    let (parts, safetensors) = weight_files(dir)?;
    let mut tensors: Vec<Tensor> = arch::extra_tensors(arch, &config)?;
    let collect_opts = ExtractOptions {
        select: None,
        skip_unsupported: false,
        ..opts.clone()
    };
    for part in &parts {
        let mut found = Source::open(part)?.collect(scanner, &collect_opts)?.tensors;
        if safetensors {
            found.sort_by(|a, b| a.name.cmp(&b.name));
        }
        for t in found {
            let hf = checkpoint_name(&t.name);
            if arch::skipped(arch, &hf) {
                continue;
            }
            let name = arch::gguf_name(arch, &hf).ok_or_else(|| {
                HfError::Unsupported(format!("{}: cannot map tensor {hf:?}", part.display()))
            })?;
            let mut t = arch::transform(arch, &hf, t, heads)?;
            t.name = name;
            tensors.push(t);
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = tensors.iter().find(|t| !seen.insert(t.name.as_str())) {
        return Err(ExtractError::Duplicates(vec![dup.name.clone()]));
    }
    let missing = arch::missing(arch, tensors.iter().map(|t| t.name.as_str()), block_count);
    if let Some(first) = missing.first() {
        return Err(HfError::Invalid(format!(
            "incomplete checkpoint: no {first}{} among the weights llama.cpp needs",
            match missing.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        ))
        .into());
    }

    if let Target::Mix(_) = target {
        // llama-quantize reads and writes tensors by layer, then by name
        // (`weight_name_comparer`); its per-layer counters count in that order.
        tensors.sort_by(|a, b| (layer_of(&a.name), &a.name).cmp(&(layer_of(&b.name), &b.name)));
    }
    let planned = plan(&tensors, target, block_count, heads, arch)?;
    let file_type = match target {
        Target::Type(t) => t.file_type(),
        Target::Mix(m) => m.file_type(),
    };
    let total_params: u64 = tensors.iter().map(|t| t.source.numel()).sum();
    let naming = naming::Naming::derive(
        config.get("_name_or_path").and_then(Json::as_str),
        &folder_name(dir),
        total_params,
    );
    let vocab_size = config.uint(&["vocab_size"]).map(|v| v as usize);
    if vocab_size.is_some_and(|v| v > vocab::MAX_VOCAB) {
        return Err(HfError::Invalid(format!(
            "config.json claims a vocabulary of {} tokens (at most {} are converted)",
            vocab_size.unwrap_or(0),
            vocab::MAX_VOCAB
        ))
        .into());
    }
    if arch.is_gemma() && !dir.join("tokenizer.model").is_file() {
        return Err(HfError::Unsupported(
            "Gemma is converted from its SentencePiece tokenizer.model, which the folder lacks"
                .into(),
        )
        .into());
    }
    let style = if arch == arch::Arch::Phi3 {
        vocab::SpmStyle::Phi3
    } else {
        vocab::SpmStyle::Standard
    };
    let mut vocab = vocab::read(dir, vocab_size, style)?;
    if arch.is_gemma() {
        vocab::gemma_extras(&mut vocab.kvs, arch == arch::Arch::Gemma);
    }
    for (key, text) in &vocab.templates {
        let issues = crate::container::template::analyse(text);
        if let Some(i) = issues.first() {
            return Err(ExtractError::Format(format!(
                "refused: {key} is not a clean chat template ({} at byte {}: {}); it is not \
                 copied into a model meant to run",
                i.rule, i.offset, i.message
            )));
        }
    }

    let mut kvs: Vec<(String, Value)> = vec![
        ("general.architecture".into(), arch.name().into()),
        ("general.type".into(), "model".into()),
    ];
    kvs.extend(sampling(dir)?);
    let named = [
        ("general.name", &naming.name),
        ("general.organization", &naming.organization),
        ("general.basename", &naming.basename),
        ("general.finetune", &naming.finetune),
        ("general.version", &naming.version),
        ("general.size_label", &naming.size_label),
    ];
    for (k, v) in named {
        if let Some(v) = v {
            kvs.push((k.into(), v.as_str().into()));
        }
    }
    kvs.extend(arch::hyperparameters(arch, &config, block_count)?);
    kvs.push(("general.file_type".into(), Value::U32(file_type)));
    kvs.push((
        "general.quantization_version".into(),
        Value::U32(crate::format::gguf::QUANTIZATION_VERSION),
    ));
    kvs.extend(vocab.kvs);
    kvs.push((
        to_gguf::VERDICT_KEY.into(),
        verdict.to_string().as_str().into(),
    ));
    kvs.push((
        to_gguf::FORMAT_KEY.into(),
        Format::HfFolder.to_string().as_str().into(),
    ));
    let part_names: Vec<String> = parts
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    // `sha256sum` lines of the weight files; the digests are patched in once written.
    let placeholder: String = part_names
        .iter()
        .map(|n| format!("{}  {n}\n", "0".repeat(64)))
        .collect();
    if !opts.no_source_hash {
        kvs.push((to_gguf::SHA_KEY.into(), placeholder.as_str().into()));
    }

    let extraction = super::Extraction {
        format: Format::HfFolder,
        tensors,
        skipped: Vec::new(),
        dropped: Vec::new(),
    };
    opts.progress.set_total(
        extraction
            .tensors
            .iter()
            .map(|t| t.source.nbytes())
            .fold(0, u64::saturating_add),
    );
    // `sha256sum` lines of the weight files, patched over the placeholder once written.
    let hasher = if opts.no_source_hash {
        Hasher::none(dir)
    } else {
        let (parts, names) = (parts.clone(), part_names.clone());
        Hasher::spawn(dir, move || -> io::Result<String> {
            let digests = hash_files(&parts)?;
            Ok(digests
                .iter()
                .zip(&names)
                .map(|(h, n)| format!("{h}  {n}\n"))
                .collect())
        })
    };
    let mut writer = to_gguf::GgufFile::new(&extraction, &planned, kvs, &opts.progress);
    let (len, sums) = write_output(output, opts.force, &mut writer, hasher)?;
    let sums = sums.unwrap_or_default();
    Ok(Written {
        output: output.to_path_buf(),
        format: extraction.format,
        tensors: planned
            .iter()
            .map(|p| {
                let t = &extraction.tensors[p.index];
                (t.name.clone(), t.dtype, t.shape.clone())
            })
            .collect(),
        bytes: len,
        skipped: Vec::new(),
        dropped: Vec::new(),
        source_sha256: sums.trim_end().to_string(),
        notes: Vec::new(),
        gguf_types: planned.iter().map(|p| p.ty).collect(),
    })
}

/// The folder's own name (`.` resolved).
fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// The layer of a `blk.N.…` tensor, -1 for the others.
fn layer_of(name: &str) -> i64 {
    name.strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

/// SHA-256 of each file, read in order.
fn hash_files(parts: &[PathBuf]) -> io::Result<Vec<String>> {
    parts
        .iter()
        .map(|p| sha256_of(&std::fs::File::open(p)?))
        .collect()
}

/// `general.sampling.*` from `generation_config.json` (gguf-py `Metadata.load`).
fn sampling(dir: &Path) -> Result<Vec<(String, Value)>, HfError> {
    let Ok(Some(Json::Object(g))) = json_file(&dir.join("generation_config.json"), 1 << 20) else {
        return Ok(Vec::new());
    };
    let mut kv = Vec::new();
    let float = |k: &str| g.get(k).filter(|v| !v.is_null()).and_then(Json::as_f64);
    let int = |k: &str| g.get(k).filter(|v| !v.is_null()).and_then(Json::as_i64);
    if let Some(s) = g.get("sequence").and_then(Json::as_str) {
        kv.push(("general.sampling.sequence".into(), s.into()));
    }
    for (key, src) in [
        ("top_k", "top_k"),
        ("penalty_last_n", "penalty_last_n"),
        ("mirostat", "mirostat"),
    ] {
        if let Some(v) = int(src) {
            kv.push((format!("general.sampling.{key}"), Value::I32(v as i32)));
        }
    }
    for (key, src) in [
        ("top_p", "top_p"),
        ("min_p", "min_p"),
        ("xtc_probability", "xtc_probability"),
        ("xtc_threshold", "xtc_threshold"),
        ("temp", "temperature"),
        ("mirostat_tau", "mirostat_tau"),
        ("mirostat_eta", "mirostat_eta"),
    ] {
        if let Some(v) = float(src) {
            kv.push((format!("general.sampling.{key}"), Value::F32(v as f32)));
        }
    }
    if let Some(v) = float("penalty_repeat").or_else(|| float("repetition_penalty")) {
        kv.push((
            "general.sampling.penalty_repeat".into(),
            Value::F32(v as f32),
        ));
    }
    Ok(kv)
}

/// Each tensor's GGUF type: the converter's choice for one type, or the mix's.
fn plan(
    tensors: &[Tensor],
    target: Target,
    block_count: u64,
    heads: arch::Heads,
    arch: arch::Arch,
) -> Result<Vec<Planned>, ExtractError> {
    let mut planner = match target {
        Target::Mix(m) => Some(MixPlanner::new(
            m,
            tensors.iter().map(|t| t.name.as_str()),
            block_count as usize,
            (heads.n_head / heads.n_head_kv.max(1)) as u32,
            arch.is_70b(block_count, heads),
        )),
        Target::Type(_) => None,
    };
    let mut out = Vec::with_capacity(tensors.len());
    for (index, t) in tensors.iter().enumerate() {
        let native = to_gguf::native_type(t.dtype)
            .filter(|_| is_float(t))
            .ok_or_else(|| {
                ExtractError::Format(format!(
                    "{}: {:?} tensor: only float weights are converted",
                    t.name, t.dtype
                ))
            })?;
        let n_dims = t.shape.len();
        let row_len = t.shape.last().copied().unwrap_or(1) as usize;
        let ty = match (&mut planner, target) {
            (Some(p), _) => p.choose(&t.name, n_dims, row_len).unwrap_or(GgmlType::F32),
            (None, Target::Type(ty)) => converter_type(&t.name, n_dims, row_len, ty),
            (None, Target::Mix(_)) => unreachable!("a mix has a planner"),
        };
        out.push(Planned {
            index,
            ty,
            convert: ty != native,
        });
    }
    Ok(out)
}

fn is_float(t: &Tensor) -> bool {
    use super::DType;
    matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
}

/// `prepare_tensors`' choice for `--outtype`: norms, 1-D tensors and anything not a weight
/// stay F32; a row that Q8_0 blocks do not fit falls back to F16.
fn converter_type(name: &str, n_dims: usize, row_len: usize, ty: GgmlType) -> GgmlType {
    let weight =
        name.ends_with(".weight") || name.ends_with(".lora_a") || name.ends_with(".lora_b");
    if n_dims <= 1 || name.ends_with("_norm.weight") || !weight || name == "position_embd.weight" {
        return GgmlType::F32;
    }
    if ty == GgmlType::Q8_0 && !row_len.is_multiple_of(32) {
        return GgmlType::F16;
    }
    ty
}

/// The types `--quant` accepts for a folder, as words for messages.
pub const TARGETS: &str =
    "f32, f16, bf16, q8_0, q2_k, q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k";

/// The quantization target of a folder conversion, from its name (`None`: F16).
pub fn target(q: Option<&str>) -> Result<Target, String> {
    let Some(q) = q else {
        // convert_hf_to_gguf.py's default `--outtype`.
        return Ok(Target::Type(GgmlType::F16));
    };
    if let Ok(m) = q.parse::<Mix>() {
        return Ok(Target::Mix(m));
    }
    match q.parse::<GgmlType>() {
        Ok(t @ (GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Q8_0)) => {
            Ok(Target::Type(t))
        }
        _ => Err(format!("{q}: a model folder converts to one of {TARGETS}")),
    }
}
