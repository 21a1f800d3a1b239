//! GGUF: metadata and raw tensor blocks, no code. Read by [`crate::format::gguf`]; a file
//! ggml would reject is suspicious, and every chat template in its metadata is judged.

use super::{ids, Ctx, Scanned};
use crate::format::gguf::check;
use crate::format::Format;

/// Scan (validate) a GGUF file, and judge its chat templates.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let mut templates = Vec::new();
    let mut findings = match check(data, &mut templates) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ctx.anomaly(ids::GGUF_INVALID, Some(0), format!("invalid GGUF: {e}"))],
    };
    for (key, at, text) in templates {
        findings.extend(super::template::findings(ctx, &text, &key, Some(at + 8)));
    }
    Scanned {
        format: Format::Gguf,
        findings,
    }
}
