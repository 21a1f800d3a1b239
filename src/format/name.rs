//! What a file or member was found to be: the one vocabulary of format names. Its text form is
//! the JSON report's `format` field, the text report's column and the `source_format` metadata
//! extraction writes, so each name is spelled in its `Display` and nowhere else.

use super::compress::Codec;
use super::ggml::Flavour;
use std::fmt;

/// A format as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A plain pickle stream.
    Pickle,
    /// A joblib dump (a pickle holding joblib's array wrappers or companion-file names).
    Joblib,
    /// A joblib dump compressed with a codec joblib writes (`joblib-gzip`, …), or a joblib <
    /// 0.10 z-file holding a dump (`joblib-zfile`).
    JoblibCompressed(Codec),
    /// A joblib < 0.10 z-file holding one array's raw bytes.
    JoblibZFileArray,
    /// A compressed stream around content of another format (`zstd+torch-zip`).
    Compressed(Codec, Box<Format>),
    /// A compressed stream of which nothing could be decompressed.
    BrokenStream(Codec),
    /// `torch.save`'s zip archive.
    TorchZip,
    /// A TorchScript archive (`torch.jit.save`).
    TorchScript,
    /// `torch.save`'s legacy format (five pickles and raw storages).
    TorchLegacy,
    /// `torch.save`'s oldest format, a tar archive.
    TorchTar,
    /// The preview `PYTORCH1` format, never read.
    TorchPreview,
    /// A tar archive that is not torch's.
    Tar,
    /// A zip archive of `.npy` members (`numpy.savez`).
    Npz,
    /// A Keras 3 `.keras` archive (extraction names it so; a scan reports the zip).
    Keras,
    /// A zip archive of anything else.
    Zip,
    /// A numpy `.npy` array.
    Npy,
    /// safetensors.
    Safetensors,
    /// GGUF.
    Gguf,
    /// A legacy GGML-family file.
    Ggml(Flavour),
    /// An ONNX model.
    Onnx,
    /// A PMML document.
    Pmml,
    /// An HDF5 file that holds no Keras model.
    Hdf5,
    /// A Keras model saved to HDF5.
    KerasH5,
    /// A Keras 3 `config.json`.
    KerasConfig,
    /// A Jinja chat template file.
    ChatTemplate,
    /// A Hugging Face config holding chat templates.
    TokenizerConfig,
    /// A Hugging Face config holding `auto_map` code references only.
    HfConfig,
    /// A JSON object read as none of the JSON formats.
    Json,
    /// A skops `schema.json`.
    SkopsSchema,
    /// A TensorFlow `saved_model.pb`.
    TfSavedModel,
    /// A tf.keras SavedModel's `keras_metadata.pb`.
    TfKerasMetadata,
    /// A 7z archive.
    SevenZip,
    /// A RAR archive, never read.
    Rar,
    /// A Microsoft cabinet, never read.
    Cab,
    /// An ARJ archive, never read.
    Arj,
    /// Content that is recognisably not a model, with what it is (`json`, `png`, `text`, …).
    NotAModel(&'static str),
    /// Containers nested deeper than the limit: not read.
    Nested,
    /// No bytes.
    Empty,
    /// Content of no known format.
    Unknown,
    /// A file that could not be read at all.
    Unreadable,
    /// A remote file not scanned: what its scan reads lies beyond the download budget.
    Unscanned,
    /// A Hugging Face model folder (extraction's input).
    HfFolder,
}

/// Prefix of the name of content that is not a model (`not-a-model:json`).
pub const NOT_A_MODEL: &str = "not-a-model";

impl Format {
    /// True for content that is not a model (reported apart).
    pub fn is_not_a_model(&self) -> bool {
        matches!(self, Format::NotAModel(_))
    }

    /// True for the formats `torch.save` and `torch.jit.save` write.
    pub fn is_torch(&self) -> bool {
        matches!(
            self,
            Format::TorchZip | Format::TorchScript | Format::TorchLegacy | Format::TorchTar
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Format::Pickle => "pickle",
            Format::Joblib => "joblib",
            Format::JoblibCompressed(c) => return write!(f, "joblib-{}", c.name()),
            Format::JoblibZFileArray => "joblib-zfile-array",
            Format::Compressed(c, inner) => return write!(f, "{}+{inner}", c.name()),
            Format::BrokenStream(c) => c.name(),
            Format::TorchZip => "torch-zip",
            Format::TorchScript => "torchscript",
            Format::TorchLegacy => "torch-legacy",
            Format::TorchTar => "torch-tar",
            Format::TorchPreview => "torch-preview",
            Format::Tar => "tar",
            Format::Npz => "npz",
            Format::Keras => "keras",
            Format::Zip => "zip",
            Format::Npy => "npy",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Ggml(flavour) => flavour.name(),
            Format::Onnx => "onnx",
            Format::Pmml => "pmml",
            Format::Hdf5 => "hdf5",
            Format::KerasH5 => "keras-h5",
            Format::KerasConfig => "keras-config",
            Format::ChatTemplate => "chat-template",
            Format::TokenizerConfig => "tokenizer-config",
            Format::HfConfig => "hf-config",
            Format::Json => "json",
            Format::SkopsSchema => "skops-schema",
            Format::TfSavedModel => "tf-savedmodel",
            Format::TfKerasMetadata => "tf-keras-metadata",
            Format::SevenZip => "7z",
            Format::Rar => "rar",
            Format::Cab => "cab",
            Format::Arj => "arj",
            Format::NotAModel(what) => return write!(f, "{NOT_A_MODEL}:{what}"),
            Format::Nested => "nested",
            Format::Empty => "empty",
            Format::Unknown => "unknown",
            Format::Unreadable => "unreadable",
            Format::Unscanned => "unscanned",
            Format::HfFolder => "hf-folder",
        };
        f.write_str(name)
    }
}

/// Serialized as its name: the report's `format` field is a string.
impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_name_what_they_hold() {
        let inner = Format::Compressed(Codec::Zstd, Box::new(Format::NotAModel("binary")));
        assert_eq!(inner.to_string(), "zstd+not-a-model:binary");
        assert_eq!(
            Format::JoblibCompressed(Codec::Gzip).to_string(),
            "joblib-gzip"
        );
        assert_eq!(Format::Ggml(Flavour::Ggjt).to_string(), "ggjt");
        assert_eq!(
            serde_json::to_string(&Format::TorchZip).unwrap(),
            "\"torch-zip\""
        );
        assert!(!inner.is_not_a_model());
        assert!(Format::NotAModel("png").is_not_a_model());
    }

    #[test]
    fn the_readme_lists_every_name() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        use Format::*;
        let all = [
            Pickle,
            Joblib,
            JoblibZFileArray,
            TorchZip,
            TorchScript,
            TorchLegacy,
            TorchTar,
            TorchPreview,
            Tar,
            Npz,
            Zip,
            Npy,
            Safetensors,
            Gguf,
            Onnx,
            Pmml,
            Hdf5,
            KerasH5,
            KerasConfig,
            ChatTemplate,
            TokenizerConfig,
            HfConfig,
            Json,
            SkopsSchema,
            TfSavedModel,
            TfKerasMetadata,
            SevenZip,
            Rar,
            Cab,
            Arj,
            Nested,
            Empty,
            Unknown,
            Unreadable,
            Unscanned,
        ];
        let flavours = [Flavour::Ggml, Flavour::Ggmf, Flavour::Ggjt, Flavour::Ggla];
        for f in all.into_iter().chain(flavours.map(Ggml)) {
            assert!(readme.contains(&format!("`{f}`")), "README lacks `{f}`");
        }
    }
}
