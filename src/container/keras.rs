//! Keras 3 model configs (`config.json` in a `.keras` zip) judged reference by reference, as the
//! oldest affected Keras would resolve them (the `keras_version` a file claims is never trusted):
//!
//! * `module`/`class_name` outside Keras's own packages is judged by the pickle rule set: a deny
//!   match (`os.system`, `builtins.exec`, … — CVE-2025-1550) is dangerous, anything else unknown;
//! * Keras's non-modelling APIs (`keras.utils.get_file`, CVE-2025-8747;
//!   `keras.config.enable_unsafe_deserialization`, CVE-2025-9906; loaders and savers) are
//!   dangerous;
//! * `module: "builtins"` functions resolve by name in Keras's activations, losses, metrics, … —
//!   the names Keras writes are clean, code builtins (`exec`, `eval`, `open`, …) dangerous;
//! * Lambda bytecode (`__lambda__`, Keras 2 `function_type: "lambda"`) is decoded and judged by
//!   what it reaches ([`super::keras_lambda`]);
//! * `TorchModuleWrapper`'s base64 `torch.save` archive is decoded and scanned as a file
//!   (CVE-2025-49655); lookup-layer vocabularies given as a path or URL (CVE-2025-12058) and
//!   `TFSMLayer` paths (CVE-2026-1462) are dangerous.

use super::{Ctx, Scanned};
use crate::finding::{Finding, Usage};
use crate::format::keras::{self, Object};
use crate::format::Format;
use crate::rules::Judgement;

/// Rule ids of Keras findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{
        KERAS_DANGEROUS_REFERENCE as DANGEROUS_REFERENCE,
        KERAS_EXTERNAL_RESOURCE as EXTERNAL_RESOURCE, KERAS_LAMBDA as LAMBDA,
        KERAS_UNRESOLVED as UNRESOLVED,
    };
}

/// Keras packages whose public symbols Keras resolves itself.
const KERAS_PACKAGES: &[&str] = &["keras", "keras_hub", "keras_cv", "keras_nlp", "tf_keras"];

/// `keras.*` names that are not modelling APIs (Keras 3.15 `NON_MODELING_APIS`): loading one
/// from a config downloads, writes, loads or disables safe mode.
const NON_MODELING: &[&str] = &[
    "clear_session",
    "enable_unsafe_deserialization",
    "load_model",
    "model_from_json",
    "save_model",
    "image_dataset_from_directory",
    "load_img",
    "save_img",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "deserialize_keras_object",
    "load_weights",
    "register_keras_serializable",
    "save_weights",
    "serialize_keras_object",
    "get_file",
];

/// Function names Keras writes with `module: "builtins"` that resolve to its own activations,
/// losses and metrics (Keras 3.15.1).
const KERAS_FUNCTIONS: &[&str] = &[
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "tanh",
    "tanh_shrink",
    "threshold",
    "swish",
    "categorical_generalized_cross_entropy",
    "circle",
    "cosine_similarity",
    "ctc",
    "dice",
    "huber",
    "log_cosh",
    "tversky",
    "binary_accuracy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "concordance_correlation",
    "hinge",
    "kl_divergence",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "pearson_correlation",
    "poisson",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
];

/// Top-level packages whose modules a Lambda's closure may hold (`keras.ops`, `numpy`): tensor
/// libraries Keras itself imports.
pub(crate) const MODULES_FOR_LAMBDAS: &[&str] = &[
    "keras",
    "tf_keras",
    "tensorflow",
    "numpy",
    "math",
    "jax",
    "torch",
];

/// Largest base64 payload decoded (TorchModuleWrapper).
const MAX_PAYLOAD: usize = 64 << 20;

/// True when `v` (a parsed JSON object) is a Keras model config.
pub(crate) fn is_config(v: &serde_json::Value) -> bool {
    keras::is_config(v)
}

/// Scan a parsed Keras config.
pub(crate) fn scan(ctx: &Ctx<'_>, v: &serde_json::Value, depth: usize) -> Scanned {
    let mut findings = Vec::new();
    match keras::objects(v) {
        Ok(objects) => {
            for o in &objects {
                judge(ctx, o, depth, &mut findings);
            }
        }
        Err(e) => findings.push(ctx.anomaly(ids::UNRESOLVED, Some(0), format!("Keras {e}"))),
    }
    Scanned {
        format: Format::KerasConfig,
        findings,
    }
}

fn field<'a>(o: &'a Object, k: &str) -> Option<&'a str> {
    o.fields
        .iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
}

fn judge(ctx: &Ctx<'_>, o: &Object, depth: usize, out: &mut Vec<Finding>) {
    let at = &o.path;
    // Lambda bytecode.
    if o.class_name == "__lambda__" {
        out.extend(super::keras_lambda::judge(ctx, at, field(o, "code"), None));
        return;
    }
    // Keras 2 / tf_keras: `function`, `output_shape` and `mask` as `[code, defaults, closure]`.
    let mut keras2_lambda = false;
    // Each names the module whose globals it runs with (tf_keras `Lambda.from_config`).
    for (kind, code, module) in [
        ("function_type", "function", "module"),
        ("output_shape_type", "output_shape", "output_shape_module"),
        ("mask_type", "mask", "mask_module"),
    ] {
        if field(o, kind) == Some("lambda") {
            keras2_lambda = true;
            let module = field(o, module);
            out.extend(super::keras_lambda::judge(ctx, at, field(o, code), module));
        }
    }
    if keras2_lambda {
        return;
    }
    match o.class_name.as_str() {
        "TorchModuleWrapper" => {
            torch_module(ctx, o, depth, out);
            return;
        }
        "StringLookup" | "IntegerLookup" | "TextVectorization" => {
            if let Some(v) = field(o, "vocabulary") {
                out.push(ctx.anomaly(
                    ids::EXTERNAL_RESOURCE,
                    None,
                    format!(
                        "{} at {at} reads its vocabulary from '{v}' (a file or URL) when loaded",
                        o.class_name
                    ),
                ));
            }
        }
        "TFSMLayer" => {
            out.push(ctx.anomaly(
                ids::EXTERNAL_RESOURCE,
                None,
                format!(
                    "TFSMLayer at {at} loads the SavedModel at '{}' when the model is loaded",
                    field(o, "filepath").unwrap_or("?")
                ),
            ));
        }
        _ => {}
    }
    let Some(module) = o.module.as_deref() else {
        // Keras 2 configs have no module: classes resolve in Keras or custom objects only.
        return;
    };
    let package = module.split('.').next().unwrap_or("");
    let name: &str = match (o.class_name.as_str(), o.config_name.as_deref()) {
        ("function" | "builtin_function_or_method", Some(n)) => n,
        _ => &o.class_name,
    };
    let registered = o.registered_name.as_deref().unwrap_or("");
    if KERAS_PACKAGES.contains(&package) {
        if NON_MODELING.contains(&name) || NON_MODELING.iter().any(|n| registered.ends_with(n)) {
            out.push(ctx.anomaly(
                ids::DANGEROUS_REFERENCE,
                None,
                format!("{module}.{name} at {at}: a Keras API that downloads, writes, loads models or disables safe mode, called while loading"),
            ));
        }
        return;
    }
    if module == "builtins" && o.class_name == "function" && KERAS_FUNCTIONS.contains(&name) {
        return;
    }
    if module == "builtins" && o.class_name == "module" {
        // A module a Lambda's closure holds (`keras.ops`): Keras imports it by name when loading.
        let target = o.config_name.as_deref().unwrap_or("");
        let top = target.split('.').next().unwrap_or("");
        if MODULES_FOR_LAMBDAS.contains(&top) {
            return;
        }
        let dangerous = crate::container::keras_lambda::is_dangerous_name(top);
        let rule = if dangerous {
            ids::DANGEROUS_REFERENCE
        } else {
            ids::UNRESOLVED
        };
        let mut f = ctx.anomaly(
            rule,
            None,
            format!("module '{target}' at {at}: Keras imports it when loading (a Lambda's closure), which runs its code"),
        );
        f.global = Some(target.to_string());
        out.push(f);
        return;
    }
    let usage = if o.class_name == "function" {
        Usage::Called
    } else {
        Usage::Instantiated
    };
    match ctx.scanner.rules.judge(module, name) {
        Judgement::Dangerous(r) => out.push(Finding {
            rule: ids::DANGEROUS_REFERENCE.into(),
            severity: ctx
                .scanner
                .rules
                .get(ids::DANGEROUS_REFERENCE)
                .map(|x| x.severity)
                .unwrap_or(r.severity)
                .max(r.severity),
            global: Some(format!("{module}.{name}")),
            module: Some(module.to_string()),
            usage,
            offset: None,
            member: None,
            call: None,
            message: format!(
                "{module}.{name} at {at}: resolved and called by Keras 3.0–3.8 (CVE-2025-1550); {} ({})",
                r.name, r.id
            ),
        }),
        _ => {
            let mut f = ctx.anomaly(
                ids::UNRESOLVED,
                None,
                format!("{module}.{name} at {at} is outside Keras: a custom object, or a module Keras 3.0–3.8 would import"),
            );
            f.global = Some(format!("{module}.{name}"));
            f.usage = usage;
            out.push(f);
        }
    }
}

/// TorchModuleWrapper keeps `torch.save(module)` as base64 in `config.module`; Keras 3.11.0–3.11.2
/// loads it with `weights_only=False`. Decoded and scanned as a file of its own.
fn torch_module(ctx: &Ctx<'_>, o: &Object, depth: usize, out: &mut Vec<Finding>) {
    let Some(b64) = field(o, "module") else {
        return;
    };
    let member = format!("{}/module", o.path);
    match decode_base64(b64) {
        Some(bytes) if !bytes.is_empty() => {
            let scanned = super::scan_content(ctx, &bytes, Some("module.pt"), depth + 1);
            out.push(ctx.anomaly(
                ids::UNRESOLVED,
                None,
                format!("TorchModuleWrapper at {}: a torch.save archive ({} bytes, {}) that Keras 3.11.0–3.11.2 loads with weights_only=False (CVE-2025-49655); scanned below", o.path, bytes.len(), scanned.format),
            ));
            out.extend(scanned.findings.into_iter().map(|f| f.in_member(&member)));
        }
        _ => out.push(ctx.anomaly(
            ids::UNRESOLVED,
            None,
            format!("TorchModuleWrapper at {}: module is not base64 (or too large) and cannot be scanned", o.path),
        )),
    }
}

/// Base64 decoded as Keras decodes it: Python's `binascii.a2b_base64` in its default, lenient
/// mode (`base64.b64decode`, the `base64` codec). Characters outside the alphabet are skipped,
/// a `=` after two or three characters of a quad ends the data (whatever follows is ignored),
/// and an unfinished quad is an error. `None` on an error or beyond [`MAX_PAYLOAD`].
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    if s.len() / 4 * 3 > MAX_PAYLOAD {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut quad_pos, mut pads, mut left) = (0u32, 0u32, 0u8);
    for c in s.bytes() {
        if c == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        pads = 0;
        match quad_pos {
            0 => left = v,
            1 => {
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
            }
            2 => {
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
            }
            _ => out.push((left << 6) | v),
        }
        quad_pos = (quad_pos + 1) % 4;
    }
    (quad_pos == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64() {
        // Each as Python's `base64.b64decode` reads it.
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("a*G-V_s!bG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8=aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aG=VsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbA==bG8=").unwrap(), b"hell");
        assert!(decode_base64("aGVsbG8").is_none());
        assert!(decode_base64("aGVsb").is_none());
        assert_eq!(decode_base64("").unwrap(), b"");
    }
}
