//! ONNX models judged: where external data points, which operator domains must be loaded, and
//! operators that run Python. The reader is [`crate::format::onnx`].
//!
//! * `external_data` locations that are absolute, carry a drive letter, UNC prefix or `~`, have a
//!   `..` component or a NUL byte, or are onnxruntime's `*/_ORT_MEM_ADDR_/*` sentinel are
//!   dangerous (CVE-2022-25882, CVE-2024-27318): loading reads outside the model's folder. A
//!   location that is a symbolic link is dangerous too (CVE-2026-34447).
//! * For a file on disk, each external file must exist beside the model and hold
//!   `offset + length`; otherwise, and for keys other than the four ONNX defines, or numbers that
//!   are not non-negative decimals, suspicious (GHSA-538c-55jv-c5g9).
//! * Operator domains other than standard ONNX and onnxruntime's are suspicious (a custom-op
//!   library must be loaded); onnxruntime's `PyOp`, which imports the Python module its
//!   attributes name, is dangerous.

use super::{Ctx, Scanned};
use crate::finding::Finding;
use crate::format::onnx::{self, External, Model};
use crate::format::Format;

/// Rule ids of ONNX findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{
        ONNX_CUSTOM_DOMAIN as CUSTOM_DOMAIN, ONNX_EXTERNAL_ESCAPE as EXTERNAL_ESCAPE,
        ONNX_EXTERNAL_UNVERIFIED as EXTERNAL_UNVERIFIED, ONNX_INVALID as INVALID,
        ONNX_PYTHON_OP as PYTHON_OP,
    };
}

/// Domains of standard ONNX (`onnx/common/constants.h`) and onnxruntime
/// (`include/onnxruntime/core/graph/constants.h`), whose operators ship with the runtime.
const KNOWN_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.experimental",
    "com.ms.internal.nhwc",
    "com.microsoft.dml",
    "org.pytorch.aten",
    "com.intel.ai",
    "com.xilinx",
];

/// The external-data keys ONNX defines.
const KNOWN_KEYS: &[&str] = &["location", "offset", "length", "checksum"];

/// Why an external-data location leaves the model's folder, if it does.
pub fn escapes(location: &str) -> Option<&'static str> {
    if location.contains('\0') {
        return Some("contains a NUL byte");
    }
    if location.contains("_ORT_MEM_ADDR_") {
        return Some("is onnxruntime's in-memory address sentinel");
    }
    if location.starts_with('/') || location.starts_with('\\') {
        return Some("is absolute");
    }
    let b = location.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("has a drive letter");
    }
    if location.starts_with('~') {
        return Some("starts with ~ (a home folder)");
    }
    if location.split(['/', '\\']).any(|c| c == "..") {
        return Some("has a `..` component");
    }
    None
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Scan an ONNX model. `depth` > 0 means the model is inside an archive: its external files
/// are not on disk beside it, and are not looked for.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let mut findings = Vec::new();
    match onnx::read(data) {
        Ok(model) => judge(
            ctx,
            &model,
            if depth == 0 { ctx.dir } else { None },
            &mut findings,
        ),
        Err(e) => findings.push(ctx.anomaly(
            ids::INVALID,
            Some(0),
            format!("ONNX model cannot be read: {e}"),
        )),
    }
    Scanned {
        format: Format::Onnx,
        findings,
    }
}

fn judge(ctx: &Ctx<'_>, model: &Model, dir: Option<&std::path::Path>, out: &mut Vec<Finding>) {
    let mut domains_reported = std::collections::BTreeSet::new();
    for n in &model.nodes {
        if n.op_type == "PyOp" {
            let attr = |k: &str| {
                n.string_attrs
                    .iter()
                    .find(|(a, _)| a == k)
                    .map(|(_, v)| v.as_str())
            };
            let target = match (attr("module"), attr("class_name")) {
                (Some(m), Some(c)) => {
                    let how = match ctx.scanner.rules.judge(m, c) {
                        crate::rules::Judgement::Dangerous(r) => {
                            format!(" ({} by {})", r.name, r.id)
                        }
                        _ => String::new(),
                    };
                    format!("`{m}.{c}`{how}")
                }
                _ => "a Python class".to_string(),
            };
            out.push(ctx.anomaly(
                ids::PYTHON_OP,
                Some(n.offset as u64),
                format!(
                    "node '{}' is onnxruntime's PyOp: running the model imports and calls {target}",
                    n.name
                ),
            ));
            continue;
        }
        if !KNOWN_DOMAINS.contains(&n.domain.as_str())
            && !model
                .function_domains
                .iter()
                .any(|(d, f)| *d == n.domain && *f == n.op_type)
            && domains_reported.insert((n.domain.clone(), n.op_type.clone()))
        {
            out.push(ctx.anomaly(
                ids::CUSTOM_DOMAIN,
                Some(n.offset as u64),
                format!(
                    "operator '{}' of domain '{}' needs a custom-op library the scan cannot see",
                    n.op_type, n.domain
                ),
            ));
        }
    }
    for e in &model.external {
        external(ctx, e, dir, out);
    }
}

fn external(ctx: &Ctx<'_>, e: &External, dir: Option<&std::path::Path>, out: &mut Vec<Finding>) {
    let at = Some(e.offset as u64);
    let get = |k: &str| {
        e.entries
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    };
    for (k, _) in &e.entries {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            out.push(ctx.anomaly(
                ids::EXTERNAL_UNVERIFIED,
                at,
                format!("tensor '{}': unknown external_data key '{k}'", e.tensor),
            ));
        }
    }
    let Some(location) = get("location") else {
        out.push(ctx.anomaly(
            ids::EXTERNAL_UNVERIFIED,
            at,
            format!("tensor '{}': external data without a location", e.tensor),
        ));
        return;
    };
    if let Some(why) = escapes(location) {
        out.push(ctx.anomaly(
            ids::EXTERNAL_ESCAPE,
            at,
            format!(
                "tensor '{}': external data location '{}' {why}: loading reads outside the model's folder",
                e.tensor,
                location.escape_debug()
            ),
        ));
        return;
    }
    let mut numbers = [0u64; 2];
    for (i, k) in ["offset", "length"].iter().enumerate() {
        if let Some(v) = get(k) {
            match v.parse::<u64>() {
                Ok(n) if is_decimal(v) => numbers[i] = n,
                _ => {
                    out.push(ctx.anomaly(
                        ids::EXTERNAL_UNVERIFIED,
                        at,
                        format!(
                            "tensor '{}': external data {k} '{v}' is not a non-negative decimal",
                            e.tensor
                        ),
                    ));
                    return;
                }
            }
        }
    }
    let Some(dir) = dir else { return };
    let path = dir.join(location);
    match std::fs::symlink_metadata(&path) {
        Err(_) => out.push(ctx.anomaly(
            ids::EXTERNAL_UNVERIFIED,
            at,
            format!("tensor '{}': external data file '{location}' is missing", e.tensor),
        )),
        Ok(m) if m.file_type().is_symlink() => out.push(ctx.anomaly(
            ids::EXTERNAL_ESCAPE,
            at,
            format!(
                "tensor '{}': external data file '{location}' is a symbolic link: loading follows it out of the folder",
                e.tensor
            ),
        )),
        Ok(m) if !m.is_file() => out.push(ctx.anomaly(
            ids::EXTERNAL_UNVERIFIED,
            at,
            format!("tensor '{}': external data '{location}' is not a file", e.tensor),
        )),
        Ok(m) => {
            let [offset, length] = numbers;
            let end = if get("length").is_some() {
                offset.checked_add(length)
            } else {
                Some(offset)
            };
            if end.is_none_or(|end| end > m.len()) {
                out.push(ctx.anomaly(
                    ids::EXTERNAL_UNVERIFIED,
                    at,
                    format!(
                        "tensor '{}': external data runs past the end of '{location}' ({} bytes)",
                        e.tensor,
                        m.len()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escapes;

    #[test]
    fn locations() {
        for bad in [
            "../../../etc/passwd",
            "/etc/passwd",
            "a/../../x",
            "C:\\Windows\\win.ini",
            "\\\\host\\share\\x",
            "~/.ssh/id_rsa",
            "x\0y",
            "*/_ORT_MEM_ADDR_/*",
            "a\\..\\..\\b",
        ] {
            assert!(escapes(bad).is_some(), "{bad}");
        }
        for good in ["weights.bin", "data/model.onnx.data", "a..b", "..x"] {
            assert!(escapes(good).is_none(), "{good}");
        }
    }
}
