//! HDF5 files judged over [`crate::format::hdf5`]'s reading:
//!
//! * external links, external raw storage and virtual datasets make the library read another
//!   file: one beside the model is suspicious (PS986), one through an absolute path, a drive,
//!   `~` or a `..` component dangerous (PS985);
//! * a Keras / tf.keras HDF5 model (`model.save("m.h5")`) keeps its config as JSON in the root
//!   group's `model_config` attribute and its compile settings in `training_config`: both are
//!   judged as Keras configs are in `.keras` files ([`super::keras`]);
//! * datasets are data; a file that cannot be read whole is suspicious (PS987), never clean.

use super::{Ctx, Scanned};
use crate::finding::Finding;
use crate::format::hdf5::{self, External};
use crate::format::Format;

/// Rule ids of HDF5 findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{
        HDF5_EXTERNAL_ESCAPE as EXTERNAL_ESCAPE, HDF5_EXTERNAL_REFERENCE as EXTERNAL_REFERENCE,
        HDF5_INVALID as INVALID,
    };
}

/// Root attributes where Keras keeps JSON configs.
const KERAS_ATTRIBUTES: &[&str] = &["model_config", "training_config"];

/// Scan an HDF5 file.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let contents = match hdf5::read(data) {
        Ok(c) => c,
        Err(e) => {
            return ctx.unread(
                Format::Hdf5,
                ids::INVALID,
                format!("HDF5 file not read whole: {e}"),
            )
        }
    };
    let mut findings = Vec::new();
    for x in &contents.externals {
        findings.push(external(ctx, &x.path, &x.external));
    }
    let mut format = Format::Hdf5;
    for key in KERAS_ATTRIBUTES {
        let Some(text) = contents.string_attribute("/", key) else {
            continue;
        };
        format = Format::KerasH5;
        match crate::format::keras::parse(text.as_bytes()) {
            Ok(v) => {
                for mut f in super::keras::scan(ctx, &v, depth).findings {
                    f.message = format!("{} (HDF5 attribute {key})", f.message);
                    findings.push(f);
                }
            }
            Err(e) => findings.push(ctx.anomaly(
                super::keras::ids::UNRESOLVED,
                None,
                format!("HDF5 attribute {key} is not a Keras config: {e}"),
            )),
        }
    }
    Scanned { format, findings }
}

fn external(ctx: &Ctx<'_>, at: &str, x: &External) -> Finding {
    let (what, file) = match x {
        External::Link { file, path } => {
            (format!("external link {at} to '{path}' in"), file.as_str())
        }
        External::RawFile { file } => (
            format!("dataset {at} reads its raw data from"),
            file.as_str(),
        ),
        External::Virtual { file, mappings } => (
            format!("virtual dataset {at} ({mappings} mappings) maps data from"),
            file.as_str(),
        ),
    };
    if matches!(x, External::Virtual { file, mappings: 1 } if file == ".") {
        // A virtual dataset over the file itself reads nothing else (its one mapping decoded).
        return ctx.anomaly(
            ids::EXTERNAL_REFERENCE,
            None,
            format!("{what} the file itself"),
        );
    }
    match super::onnx::escapes(file) {
        Some(why) => ctx.anomaly(
            ids::EXTERNAL_ESCAPE,
            None,
            format!(
                "{what} '{file}', which {why}: the library reads a file outside the model's folder"
            ),
        ),
        None => ctx.anomaly(
            ids::EXTERNAL_REFERENCE,
            None,
            format!("{what} '{file}', a file beside the model"),
        ),
    }
}
