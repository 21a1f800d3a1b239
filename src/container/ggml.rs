//! Legacy GGML/GGMF/GGJT/GGLA files: weights and vocabulary, no code. Valid files are clean;
//! files whose header, vocabulary or tensor table fail validation ([`crate::format::ggml`]) are
//! suspicious, since loaders that trust those numbers read out of bounds.

use super::{Ctx, Scanned};
use crate::format::ggml;

/// Rule id, from the one registry ([`crate::rules::ids`]).
pub use crate::rules::ids::GGML_INVALID as INVALID;

/// Scan a legacy GGML-family file.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let flavour = ggml::Flavour::of(data).map(|f| f.name()).unwrap_or("ggml");
    let findings = match ggml::read(data) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ctx.anomaly(INVALID, Some(0), format!("invalid {flavour} file: {e}"))],
    };
    Scanned {
        format: flavour.into(),
        findings,
    }
}
