//! Legacy GGML/GGMF/GGJT/GGLA files: weights and vocabulary, no code. Valid files are clean;
//! files whose header, vocabulary or tensor table fail validation ([`crate::format::ggml`]) are
//! suspicious, since loaders that trust those numbers read out of bounds.

use super::{Ctx, Scanned};
use crate::format::{ggml, Format};

/// Rule id, from the one registry ([`crate::rules::ids`]).
pub use crate::rules::ids::GGML_INVALID as INVALID;

/// Scan a legacy GGML-family file.
pub(crate) fn scan(ctx: &Ctx<'_>, flavour: ggml::Flavour, data: &[u8]) -> Scanned {
    let findings = match ggml::read(data) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ctx.anomaly(
            INVALID,
            Some(0),
            format!("invalid {} file: {e}", flavour.name()),
        )],
    };
    Scanned {
        format: Format::Ggml(flavour),
        findings,
    }
}
