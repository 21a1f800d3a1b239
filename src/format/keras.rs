//! Keras 3 `config.json` (the object tree of a `.keras` zip): every serialized object
//! `{module, class_name, config, registered_name}` is listed with its JSON path, never resolved
//! or imported. Also the pieces a scan needs from some objects: Lambda bytecode (Keras 3
//! `__lambda__`, Keras 2 `function_type: "lambda"`), `TorchModuleWrapper`'s base64 module,
//! lookup-layer vocabularies given as strings, `TFSMLayer` paths.

use serde_json::Value;

/// Largest `config.json` read.
pub const MAX_CONFIG: usize = 64 << 20;
/// Most objects listed.
pub const MAX_OBJECTS: usize = 1_000_000;

/// Why a config could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KerasError {
    /// Larger than [`MAX_CONFIG`].
    #[error("config.json of {0} bytes is larger than the limit")]
    TooLarge(usize),
    /// Not JSON (serde_json refuses nesting deeper than 128).
    #[error("config.json does not parse: {0}")]
    Json(String),
    /// More than [`MAX_OBJECTS`] objects.
    #[error("more than {MAX_OBJECTS} serialized objects")]
    TooManyObjects,
}

/// One serialized object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// `module` (absent in Keras 2 configs).
    pub module: Option<String>,
    /// `class_name`.
    pub class_name: String,
    /// `registered_name`.
    pub registered_name: Option<String>,
    /// `config` when it is a string (a function's name).
    pub config_name: Option<String>,
    /// String values of the `config` keys a scan judges (`module`, `vocabulary`, `filepath`,
    /// `function_type`, `code`, and the `output_shape_`/`mask_` type and module), and
    /// the code of `function`, `output_shape` and `mask` (a string, or Keras 2's
    /// `[code, defaults, closure]`).
    pub fields: Vec<(String, String)>,
    /// JSON path.
    pub path: String,
}

/// True when `v` is a Keras model config: an object with `class_name` and `config`.
pub fn is_config(v: &Value) -> bool {
    v.get("class_name").is_some_and(Value::is_string) && v.get("config").is_some()
}

/// Parse a config.
pub fn parse(data: &[u8]) -> Result<Value, KerasError> {
    if data.len() > MAX_CONFIG {
        return Err(KerasError::TooLarge(data.len()));
    }
    serde_json::from_slice(data).map_err(|e| KerasError::Json(e.to_string()))
}

/// Every serialized object in `v`.
pub fn objects(v: &Value) -> Result<Vec<Object>, KerasError> {
    let mut out = Vec::new();
    walk(v, String::new(), &mut out)?;
    Ok(out)
}

/// Keys of an object's `config` whose string values are judged.
const FIELDS: &[&str] = &[
    "module",
    "vocabulary",
    "filepath",
    "function_type",
    "output_shape_type",
    "output_shape_module",
    "mask_type",
    "mask_module",
    "code",
];

fn fields(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(m) = config.as_object() else {
        return out;
    };
    for k in FIELDS {
        if let Some(Value::String(s)) = m.get(*k) {
            out.push((k.to_string(), s.clone()));
        }
    }
    // Keras 2 functions: `[code, defaults, closure]`, or the code alone (`func_load` takes both).
    for key in ["function", "output_shape", "mask"] {
        let code = match m.get(key) {
            Some(Value::Array(items)) => items.first(),
            other => other,
        };
        if let Some(Value::String(code)) = code {
            out.push((key.into(), code.clone()));
        }
    }
    out
}

fn walk(v: &Value, path: String, out: &mut Vec<Object>) -> Result<(), KerasError> {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(class_name)), Some(config)) =
                (m.get("class_name"), m.get("config"))
            {
                if out.len() >= MAX_OBJECTS {
                    return Err(KerasError::TooManyObjects);
                }
                out.push(Object {
                    module: m.get("module").and_then(Value::as_str).map(str::to_string),
                    class_name: class_name.clone(),
                    registered_name: m
                        .get("registered_name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    config_name: config.as_str().map(str::to_string),
                    fields: fields(config),
                    path: if path.is_empty() {
                        "/".into()
                    } else {
                        path.clone()
                    },
                });
            }
            for (k, child) in m {
                walk(child, format!("{path}/{k}"), out)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{path}/{i}"), out)?;
            }
        }
        _ => {}
    }
    Ok(())
}
