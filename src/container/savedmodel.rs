//! TensorFlow SavedModel files judged over [`crate::format::savedmodel`]'s reading. A SavedModel
//! is a folder; each of its files is judged here on its own and the folder's verdict is the
//! worst of them (the `variables/` checkpoint shards and `assets/` are data):
//!
//! * `saved_model.pb`: every op of the graph and of the function library. Ops that run Python
//!   (`PyFunc`, `EagerPyFunc`), read, list, write or delete files (`ReadFile`, `WriteFile`,
//!   `MatchingFiles`, `ImmutableConst`, file readers and file datasets, `DatasetToTFRecord`,
//!   summary file writers), or send tensors to a file or address (`PrintV2` to `file://`, `Debug*`
//!   ops with `debug_urls`) are dangerous (PS990), with the string constants fed to them (the
//!   path read). The save and restore ops every SavedModel holds (`SaveV2`, `RestoreV2`,
//!   `MergeV2Checkpoints`, `ShardedFilename`) and lookup tables initialised from the model's own
//!   assets are not;
//! * `keras_metadata.pb`: each layer's JSON config judged as Keras configs are
//!   ([`super::keras`]: Lambdas, references outside Keras);
//! * `fingerprint.pb`: hashes, not a model.

use super::{Ctx, Scanned};
use crate::format::savedmodel::{self, Node};
use crate::format::Format;

/// Rule ids of SavedModel findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{TF_DANGEROUS_OP as DANGEROUS_OP, TF_INVALID as INVALID};
}

/// Ops that run Python or touch files whatever their arguments.
const DANGEROUS_OPS: &[(&str, &str)] = &[
    ("PyFunc", "runs a Python function of the loading process"),
    (
        "PyFuncStateless",
        "runs a Python function of the loading process",
    ),
    (
        "EagerPyFunc",
        "runs a Python function of the loading process",
    ),
    ("ReadFile", "reads a file"),
    ("WriteFile", "writes a file"),
    ("MatchingFiles", "lists files"),
    ("MatchingFilesDataset", "lists files"),
    ("ExperimentalMatchingFilesDataset", "lists files"),
    ("ImmutableConst", "maps a file into memory"),
    ("WholeFileReader", "reads files"),
    ("WholeFileReaderV2", "reads files"),
    ("TextLineReader", "reads files"),
    ("TextLineReaderV2", "reads files"),
    ("FixedLengthRecordReader", "reads files"),
    ("FixedLengthRecordReaderV2", "reads files"),
    ("TFRecordReader", "reads files"),
    ("TFRecordReaderV2", "reads files"),
    ("LMDBReader", "reads files"),
    ("TextLineDataset", "reads files"),
    ("TFRecordDataset", "reads files"),
    ("TFRecordDatasetV2", "reads files"),
    ("FixedLengthRecordDataset", "reads files"),
    ("FixedLengthRecordDatasetV2", "reads files"),
    ("LMDBDataset", "reads files"),
    ("ExperimentalLMDBDataset", "reads files"),
    ("CSVDataset", "reads files"),
    ("CSVDatasetV2", "reads files"),
    ("ExperimentalCSVDataset", "reads files"),
    ("SqlDataset", "opens a database file"),
    ("ExperimentalSqlDataset", "opens a database file"),
    ("LoadDataset", "reads a saved dataset"),
    ("ExperimentalLoadDataset", "reads a saved dataset"),
    ("DatasetToTFRecord", "writes a file"),
    ("ExperimentalDatasetToTFRecord", "writes a file"),
    ("SaveDataset", "writes files"),
    ("SaveDatasetV2", "writes files"),
    ("ExperimentalSaveDataset", "writes files"),
    ("CreateSummaryFileWriter", "writes files"),
    ("CreateSummaryDbWriter", "writes a database file"),
];

/// Ops that send tensors somewhere when an attribute says so.
const SINK_OPS: &[(&str, &str)] = &[
    ("PrintV2", "output_stream"),
    ("DebugIdentity", "debug_urls"),
    ("DebugIdentityV2", "debug_urls"),
    ("DebugIdentityV3", "debug_urls"),
    ("DebugNanCount", "debug_urls"),
    ("DebugNumericSummary", "debug_urls"),
    ("DebugNumericSummaryV2", "debug_urls"),
    ("DecodeProtoV2", "descriptor_source"),
];

fn place(n: &Node) -> String {
    match &n.function {
        Some(f) => format!("node '{}' of function '{f}'", n.name),
        None => format!("node '{}' of the graph", n.name),
    }
}

/// Scan a `saved_model.pb`.
pub(crate) fn scan_saved_model(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let model = match savedmodel::read(data) {
        Ok(m) => m,
        Err(e) => {
            return ctx.unread(
                Format::TfSavedModel,
                ids::INVALID,
                format!("SavedModel not read whole: {e}"),
            )
        }
    };
    let mut findings = Vec::new();
    for n in &model.nodes {
        if let Some((_, what)) = DANGEROUS_OPS.iter().find(|(op, _)| *op == n.op) {
            let args = if n.constants.is_empty() {
                String::new()
            } else {
                format!(" (constants fed to it: {:?})", n.constants)
            };
            let mut f = ctx.anomaly(
                ids::DANGEROUS_OP,
                None,
                format!("{} at {}: {what}{args}", n.op, place(n)),
            );
            f.global = Some(format!("tensorflow.{}", n.op));
            findings.push(f);
            continue;
        }
        if let Some((_, attr)) = SINK_OPS.iter().find(|(op, _)| *op == n.op) {
            for (_, v) in n.attrs.iter().filter(|(k, _)| k == attr) {
                let sends = match n.op.as_str() {
                    "PrintV2" => v.starts_with("file://"),
                    "DecodeProtoV2" => !v.is_empty() && v != "local://",
                    _ => !v.is_empty(),
                };
                if sends {
                    let mut f = ctx.anomaly(
                        ids::DANGEROUS_OP,
                        None,
                        format!(
                            "{} at {}: {attr} '{v}' makes it read or write outside the model",
                            n.op,
                            place(n)
                        ),
                    );
                    f.global = Some(format!("tensorflow.{}", n.op));
                    findings.push(f);
                }
            }
        }
    }
    Scanned {
        format: Format::TfSavedModel,
        findings,
    }
}

/// Scan a `keras_metadata.pb`: each object's JSON judged as a Keras config.
pub(crate) fn scan_keras_metadata(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let mut findings = Vec::new();
    match savedmodel::keras_metadata(data) {
        Err(e) => findings.push(ctx.anomaly(
            ids::INVALID,
            Some(0),
            format!("keras_metadata.pb not read whole: {e}"),
        )),
        Ok(objects) => {
            for o in objects {
                if o.metadata.is_empty() {
                    continue;
                }
                match crate::format::keras::parse(o.metadata.as_bytes()) {
                    Ok(v) => {
                        for mut f in super::keras::scan(ctx, &v, depth).findings {
                            f.message = format!("{} (keras_metadata.pb {})", f.message, o.path);
                            findings.push(f);
                        }
                    }
                    Err(e) => findings.push(ctx.anomaly(
                        super::keras::ids::UNRESOLVED,
                        None,
                        format!("keras_metadata.pb {}: metadata is not JSON: {e}", o.path),
                    )),
                }
            }
        }
    }
    Scanned {
        format: Format::TfKerasMetadata,
        findings,
    }
}
