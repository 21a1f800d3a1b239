//! safetensors: a JSON header and raw tensor bytes, no code. Read by
//! [`crate::format::safetensors`]; a file that reader refuses is suspicious, since readers that
//! disagree on it, or bytes no tensor covers, can hide a second meaning.

use super::{ids, Ctx, Scanned};
use crate::format::{safetensors, Format};

/// Scan (validate) a safetensors file.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let findings = match safetensors::read(data) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ctx.anomaly(
            ids::SAFETENSORS_INVALID,
            Some(0),
            format!("invalid safetensors: {e}"),
        )],
    };
    Scanned {
        format: Format::Safetensors,
        findings,
    }
}
