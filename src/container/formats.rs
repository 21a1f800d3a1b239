//! Model formats other than pickles and their archives: recognised by content here, read by
//! [`crate::format`], judged by one analyser each.
//!
//! | format | recognised by | analyser |
//! |---|---|---|
//! | `tokenizer_config.json`, `chat_template.json` | a JSON object with a `chat_template` key | [`super::template`] |
//! | `*.jinja` chat template | Jinja tags in UTF-8 text named `.jinja`/`.j2` | [`super::template`] |
//! | PMML | XML whose first element is `PMML` | [`super::pmml`] |
//! | legacy GGML/GGMF/GGJT/GGLA | `lmgg`/`fmgg`/`tjgg`/`algg` magic | [`super::ggml`] |
//! | Hugging Face config with `auto_map` | a JSON object with `auto_map` | [`super::hf`] |
//! | Keras 3 `config.json` (in `.keras`) | a JSON object with `class_name` and `config` | [`super::keras`] |
//! | skops `schema.json` | a JSON node with `__loader__` and skops's protocol | [`super::skops`] |
//! | HDF5 (`.h5`, Keras HDF5 models, `model.weights.h5` in `.keras`) | the HDF5 signature at offset 0 | [`super::hdf5`] |
//! | TensorFlow `saved_model.pb`, `keras_metadata.pb` | top-level fields of `SavedModel` / `SavedMetadata` only | [`super::savedmodel`] |
//! | TensorFlow `fingerprint.pb` | named so, and `FingerprintDef`'s fields only | not a model |
//! | 7z archive | the 7z signature | [`super::sevenz`] (members scanned as files) |
//! | ONNX | `ir_version` first and a graph among decodable top-level protobuf fields | [`super::onnx`] |

use super::{Ctx, Scanned};
use crate::format::{ggml, template, Format};

/// A format recognised here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognised {
    /// A JSON object: a Hugging Face config holding `chat_template`, a skops `schema.json`, or
    /// plain JSON (not a model). Decided on the whole content, since archive readers detect on a
    /// member's first bytes.
    Json,
    /// A Jinja chat template file.
    Jinja,
    /// An ONNX model.
    Onnx,
    /// A PMML document.
    Pmml,
    /// A legacy GGML-family file.
    Ggml(ggml::Flavour),
    /// An HDF5 file.
    Hdf5,
    /// A TensorFlow `saved_model.pb`.
    SavedModel,
    /// A tf.keras SavedModel's `keras_metadata.pb`.
    KerasMetadata,
    /// A SavedModel's `fingerprint.pb` (hashes).
    TfFingerprint,
    /// A 7z archive.
    SevenZip,
}

impl Recognised {
    /// The format content recognised so is reported as, before its reader has looked further
    /// (a JSON object may turn out to be a chat-template config, an HDF5 file a Keras model).
    pub fn format(self) -> Format {
        match self {
            Recognised::Json => Format::Json,
            Recognised::Jinja => Format::ChatTemplate,
            Recognised::Onnx => Format::Onnx,
            Recognised::Pmml => Format::Pmml,
            Recognised::Ggml(flavour) => Format::Ggml(flavour),
            Recognised::Hdf5 => Format::Hdf5,
            Recognised::SavedModel => Format::TfSavedModel,
            Recognised::KerasMetadata => Format::TfKerasMetadata,
            Recognised::TfFingerprint => Format::NotAModel(TF_FINGERPRINT),
            Recognised::SevenZip => Format::SevenZip,
        }
    }
}

/// What a SavedModel's `fingerprint.pb` is reported as: hashes, not a model.
const TF_FINGERPRINT: &str = "tf-fingerprint";

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A JSON object's start: `{`, then (after whitespace) a key's quote or the closing brace.
/// Jinja's `{{`, `{%` and `{#` are not.
fn json_start(data: &[u8]) -> bool {
    let d = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut it = d.iter().copied().filter(|b| !b.is_ascii_whitespace());
    it.next() == Some(b'{') && matches!(it.next(), Some(b'"' | b'}') | None)
}

/// Largest JSON file a remote scan reads whole whatever its name.
pub const REMOTE_JSON_WHOLE: u64 = 4 << 20;

/// Whether a remote scan should read a JSON file of `size` bytes whole (to find chat templates,
/// `auto_map`, skops or Keras configs): small files always, larger ones only when named like the
/// configs that hold them (a 20 MB `tokenizer.json` holds none).
pub fn remote_json_worth_reading(name: Option<&str>, size: u64) -> bool {
    let base = name
        .map(|n| {
            n.rsplit(['/', '\\'])
                .next()
                .unwrap_or(n)
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    size <= REMOTE_JSON_WHOLE
        || base.ends_with("config.json")
        || base == "chat_template.json"
        || base == "schema.json"
}

/// What `data` is, when it is one of these formats. `name` breaks ties only (Jinja files are
/// text that other text can resemble).
pub fn detect(data: &[u8], name: Option<&str>) -> Option<Recognised> {
    if crate::format::hdf5::looks_like(data) {
        return Some(Recognised::Hdf5);
    }
    if crate::format::sevenz::looks_like(data) {
        return Some(Recognised::SevenZip);
    }
    if let Some(flavour) = ggml::Flavour::of(data) {
        return Some(Recognised::Ggml(flavour));
    }
    if crate::format::onnx::looks_like(data) {
        return Some(Recognised::Onnx);
    }
    if crate::format::savedmodel::looks_like(data) {
        return Some(Recognised::SavedModel);
    }
    if crate::format::savedmodel::looks_like_keras_metadata(data) {
        return Some(Recognised::KerasMetadata);
    }
    let base = name.map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n));
    if base == Some("fingerprint.pb") && crate::format::savedmodel::looks_like_fingerprint(data) {
        return Some(Recognised::TfFingerprint);
    }
    if crate::format::pmml::looks_like(data) {
        return Some(Recognised::Pmml);
    }
    if json_start(data) {
        return Some(Recognised::Json);
    }
    let jinja_name = name.is_some_and(|n| {
        let l = n.to_ascii_lowercase();
        l.ends_with(".jinja") || l.ends_with(".jinja2") || l.ends_with(".j2")
    });
    if jinja_name && template::looks_like_jinja(data) {
        return Some(Recognised::Jinja);
    }
    None
}

/// Scan content recognised as `f`.
pub(crate) fn scan(
    ctx: &Ctx<'_>,
    f: Recognised,
    data: &[u8],
    name: Option<&str>,
    depth: usize,
) -> Scanned {
    let findings = match f {
        Recognised::Onnx => return super::onnx::scan(ctx, data, depth),
        Recognised::Pmml => return super::pmml::scan(ctx, data),
        Recognised::Ggml(flavour) => return super::ggml::scan(ctx, flavour, data),
        Recognised::Hdf5 => return super::hdf5::scan(ctx, data, depth),
        Recognised::SavedModel => return super::savedmodel::scan_saved_model(ctx, data),
        Recognised::KerasMetadata => {
            return super::savedmodel::scan_keras_metadata(ctx, data, depth)
        }
        Recognised::TfFingerprint => return super::not_a_model(TF_FINGERPRINT),
        Recognised::SevenZip => return super::sevenz::scan(ctx, data, depth),
        Recognised::Json => return scan_json(ctx, data, name, depth),
        Recognised::Jinja => {
            let text = String::from_utf8_lossy(data);
            super::template::findings(ctx, &text, name.unwrap_or("template"), Some(0))
        }
    };
    Scanned {
        format: f.format(),
        findings,
    }
}

/// A JSON object: which of the JSON formats it is, decided on the whole content.
fn scan_json(ctx: &Ctx<'_>, data: &[u8], name: Option<&str>, depth: usize) -> Scanned {
    if crate::format::skops::looks_like(data) {
        return super::skops::scan(ctx, data);
    }
    let templates = find(data, b"\"chat_template\"");
    let code = find(data, b"\"auto_map\"");
    if (templates || code) && data.len() <= template::MAX_JSON {
        let value: serde_json::Value = match serde_json::from_slice(data) {
            Ok(v) => v,
            Err(e) => {
                return ctx.unread(
                    Format::HfConfig,
                    super::template::ids::TEMPLATE_INVALID,
                    format!("JSON with a chat_template or auto_map key does not parse: {e}"),
                )
            }
        };
        let mut findings = Vec::new();
        let has_templates = match template::from_json(&value) {
            None => false,
            Some(Err(e)) => {
                findings.push(ctx.anomaly(super::template::ids::TEMPLATE_INVALID, Some(0), e));
                true
            }
            Some(Ok(list)) => {
                for t in &list {
                    findings.extend(super::template::findings(ctx, &t.text, &t.place, None));
                }
                true
            }
        };
        let refs = crate::format::hf::auto_map(&value);
        if let Some(refs) = &refs {
            let dir = if depth == 0 { ctx.dir } else { None };
            findings.extend(super::hf::findings(ctx, refs, dir));
        }
        if has_templates || refs.is_some() {
            return Scanned {
                format: if has_templates {
                    Format::TokenizerConfig
                } else {
                    Format::HfConfig
                },
                findings,
            };
        }
    }
    if data.len() <= crate::format::keras::MAX_CONFIG && find(data, b"\"class_name\"") {
        if let Ok(v) = crate::format::keras::parse(data) {
            if super::keras::is_config(&v) {
                return super::keras::scan(ctx, &v, depth);
            }
        }
    }
    // Whole, valid JSON named `.json` is data whatever inner part its name has: a sharded
    // checkpoint's `model.safetensors.index.json` or `pytorch_model.bin.index.json` lists the
    // shards, and no loader reads JSON as a pickle.
    let named_json = name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".json"));
    match super::not_model::classify(data, name) {
        Some(what) => super::not_a_model(what),
        None if named_json => super::not_a_model("json"),
        None => ctx.unread(
            Format::Unknown,
            super::ids::UNRECOGNISED,
            "JSON content of no known model format".into(),
        ),
    }
}
