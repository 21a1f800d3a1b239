//! What content is, judged from its bytes: which reader reads it. Detection never trusts a
//! name: magic bytes decide, and the name only breaks ties (Jinja text, a SavedModel's
//! `fingerprint.pb`). What a reader then finds the content to be is a [`Format`].

use super::compress::{self, Codec};
use super::{ggml, tar, template, zip, Format};
use crate::pickle::opcode::Opcode;

/// What the content of a file or member is, judged from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zip archive (`PK\x03\x04`, the empty archive `PK\x05\x06`, or an end record at the
    /// end of content that starts with something else).
    Zip,
    /// numpy `.npy`.
    Npy,
    /// safetensors.
    Safetensors,
    /// GGUF.
    Gguf,
    /// torch legacy format: starts with the pickled magic number.
    TorchLegacy,
    /// A tar archive.
    Tar,
    /// Compressed stream (joblib compressors) or joblib z-file.
    Compressed(Codec),
    /// An archive or model format this scanner cannot look inside.
    Unscannable(&'static Format),
    /// A model format read by [`crate::format`] (chat templates, ONNX, PMML, …).
    Format(Recognised),
    /// A pickle stream (protocol 2+ header, or a protocol 0/1 opcode first).
    Pickle,
    /// No bytes at all.
    Empty,
    /// Nothing known.
    Unknown,
}

impl Kind {
    /// The format content of this kind is reported as when its reader says nothing more
    /// precise (a zip that is no torch or numpy archive, a stream that broke at once).
    pub fn format(self) -> Format {
        match self {
            Kind::Zip => Format::Zip,
            Kind::Npy => Format::Npy,
            Kind::Safetensors => Format::Safetensors,
            Kind::Gguf => Format::Gguf,
            Kind::TorchLegacy => Format::TorchLegacy,
            Kind::Tar => Format::Tar,
            Kind::Compressed(c) => Format::BrokenStream(c),
            Kind::Unscannable(f) => f.clone(),
            Kind::Format(f) => f.format(),
            Kind::Pickle => Format::Pickle,
            Kind::Empty => Format::Empty,
            Kind::Unknown => Format::Unknown,
        }
    }
}

/// Archive and model formats that cannot be looked into, by magic.
static UNSCANNABLE: &[(&[u8], Format)] = &[
    (b"Rar!\x1a\x07", Format::Rar),
    (b"MSCF", Format::Cab),
    (b"PYTORCH1", Format::TorchPreview),
    (b"\x60\xea", Format::Arj),
];

/// What `data` is. `name` (a file or member name) only breaks ties: it is consulted for nothing
/// but choosing between readings the bytes allow equally.
pub fn detect(data: &[u8], name: Option<&str>) -> Kind {
    if data.is_empty() {
        return Kind::Empty;
    }
    if zip::starts_like(data) {
        return Kind::Zip;
    }
    if data.starts_with(b"\x93NUMPY") {
        return Kind::Npy;
    }
    if data.starts_with(&super::gguf::GGUF_MAGIC) {
        return Kind::Gguf;
    }
    if super::safetensors::looks_like(data) {
        return Kind::Safetensors;
    }
    if data.starts_with(super::torch::LEGACY_MAGIC) {
        return Kind::TorchLegacy;
    }
    if let Some(f) = recognise(data, name) {
        return Kind::Format(f);
    }
    for (magic, what) in UNSCANNABLE {
        if data.starts_with(magic) {
            return Kind::Unscannable(what);
        }
    }
    if tar::looks_like(data) {
        return Kind::Tar;
    }
    if let Some(c) = compress::sniff(data) {
        return Kind::Compressed(c);
    }
    if data[0] == 0x80 {
        return Kind::Pickle;
    }
    if zip::has_end_record(data) {
        return Kind::Zip;
    }
    if Opcode::from_byte(data[0]).is_some() {
        return Kind::Pickle;
    }
    Kind::Unknown
}

/// A format recognised here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognised {
    /// A JSON object: a Hugging Face config holding `chat_template`, a skops `schema.json`, or
    /// plain JSON (not a model). Decided on the whole content, since archive readers detect on a
    /// member's first bytes.
    Json,
    /// A Jinja chat template file.
    Jinja,
    /// An ONNX model.
    Onnx,
    /// A PMML document.
    Pmml,
    /// A legacy GGML-family file.
    Ggml(ggml::Flavour),
    /// An HDF5 file.
    Hdf5,
    /// A TensorFlow `saved_model.pb`.
    SavedModel,
    /// A tf.keras SavedModel's `keras_metadata.pb`.
    KerasMetadata,
    /// A SavedModel's `fingerprint.pb` (hashes).
    TfFingerprint,
    /// A 7z archive.
    SevenZip,
}

impl Recognised {
    /// The format content recognised so is reported as, before its reader has looked further
    /// (a JSON object may turn out to be a chat-template config, an HDF5 file a Keras model).
    pub fn format(self) -> Format {
        match self {
            Recognised::Json => Format::Json,
            Recognised::Jinja => Format::ChatTemplate,
            Recognised::Onnx => Format::Onnx,
            Recognised::Pmml => Format::Pmml,
            Recognised::Ggml(flavour) => Format::Ggml(flavour),
            Recognised::Hdf5 => Format::Hdf5,
            Recognised::SavedModel => Format::TfSavedModel,
            Recognised::KerasMetadata => Format::TfKerasMetadata,
            Recognised::TfFingerprint => Format::NotAModel(TF_FINGERPRINT),
            Recognised::SevenZip => Format::SevenZip,
        }
    }
}

/// What a SavedModel's `fingerprint.pb` is reported as: hashes, not a model.
pub const TF_FINGERPRINT: &str = "tf-fingerprint";

/// A JSON object's start: `{`, then (after whitespace) a key's quote or the closing brace.
/// Jinja's `{{`, `{%` and `{#` are not.
fn json_start(data: &[u8]) -> bool {
    let d = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut it = d.iter().copied().filter(|b| !b.is_ascii_whitespace());
    it.next() == Some(b'{') && matches!(it.next(), Some(b'"' | b'}') | None)
}

/// What `data` is, when it is one of these formats. `name` breaks ties only (Jinja files are
/// text that other text can resemble).
pub fn recognise(data: &[u8], name: Option<&str>) -> Option<Recognised> {
    if super::hdf5::looks_like(data) {
        return Some(Recognised::Hdf5);
    }
    if super::sevenz::looks_like(data) {
        return Some(Recognised::SevenZip);
    }
    if let Some(flavour) = ggml::Flavour::of(data) {
        return Some(Recognised::Ggml(flavour));
    }
    if super::onnx::looks_like(data) {
        return Some(Recognised::Onnx);
    }
    if super::savedmodel::looks_like(data) {
        return Some(Recognised::SavedModel);
    }
    if super::savedmodel::looks_like_keras_metadata(data) {
        return Some(Recognised::KerasMetadata);
    }
    let base = name.map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n));
    if base == Some("fingerprint.pb") && super::savedmodel::looks_like_fingerprint(data) {
        return Some(Recognised::TfFingerprint);
    }
    if super::pmml::looks_like(data) {
        return Some(Recognised::Pmml);
    }
    if json_start(data) {
        return Some(Recognised::Json);
    }
    let jinja_name = name.is_some_and(|n| {
        let l = n.to_ascii_lowercase();
        l.ends_with(".jinja") || l.ends_with(".jinja2") || l.ends_with(".j2")
    });
    if jinja_name && template::looks_like_jinja(data) {
        return Some(Recognised::Jinja);
    }
    None
}
