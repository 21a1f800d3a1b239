//! Model formats other than pickles and their archives: recognised by content in
//! [`crate::format::detect`], read by [`crate::format`], judged by one analyser each.
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
use crate::format::detect::{Recognised, TF_FINGERPRINT};
use crate::format::{template, Format};

fn find(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
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
                findings.push(ctx.anomaly(
                    super::template::ids::TEMPLATE_INVALID,
                    Some(0),
                    e.to_string(),
                ));
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
