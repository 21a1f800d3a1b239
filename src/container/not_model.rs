//! Content that is recognisably not a model: text (source, JSON, YAML, Markdown, licences),
//! images, audio, documents. A model repository holds these beside its weights; calling them
//! suspicious would make every repository fail a gate.
//!
//! Only content that no reader recognised reaches here (anything that is a pickle or a known
//! container has been scanned whatever its name). Unknown content is "not a model" unless its
//! name claims a model format ([`claims_model_format`]), in which case it stays suspicious: a
//! `.pt` file that no loader would read is still something the user means to load.

/// File name endings that claim a model (or array, or archive of models) format. A name claims
/// one when any of its dot-separated parts after the first is listed (`model.pt.gz`).
const MODEL_EXTENSIONS: &[&str] = &[
    "pt",
    "pth",
    "bin",
    "ckpt",
    "pkl",
    "pickle",
    "joblib",
    "jbl",
    "dill",
    "sav",
    "npy",
    "npz",
    "h5",
    "hdf5",
    "keras",
    "onnx",
    "safetensors",
    "gguf",
    "ggml",
    "pb",
    "tflite",
    "mar",
    "model",
    "pte",
    "ptl",
    "nemo",
    "msgpack",
    "pdparams",
    "mlmodel",
    "llamafile",
];

/// True when the file name claims a model format (see `MODEL_EXTENSIONS`).
pub fn claims_model_format(name: Option<&str>) -> bool {
    let Some(name) = name else {
        return false;
    };
    let base = name.rsplit(['/', '\\', '!']).next().unwrap_or(name);
    let lower = base.to_ascii_lowercase();
    lower
        .split('.')
        .skip(1)
        .any(|ext| MODEL_EXTENSIONS.contains(&ext))
}

/// What `data` is when it is not a model: `text`, `json`, `png`, … or `binary`; `None` when its
/// name claims a model format (it is then judged as unrecognised, suspicious).
pub fn classify(data: &[u8], name: Option<&str>) -> Option<&'static str> {
    // A SentencePiece tokenizer (`tokenizer.model`) is data whatever it is called.
    if is_sentencepiece(data) {
        return Some("sentencepiece");
    }
    if claims_model_format(name) {
        return None;
    }
    Some(sniff(data))
}

/// The kind of non-model content, by magic or by being text.
fn sniff(data: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"%PDF-", "pdf"),
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"\x00\x00\x01\x00", "ico"),
        (b"OggS", "ogg"),
        (b"fLaC", "flac"),
        (b"ID3", "mp3"),
        (b"wOFF", "woff"),
        (b"wOF2", "woff2"),
        (b"\x7fELF", "elf"),
    ];
    if data.is_empty() {
        return "empty";
    }
    for (magic, what) in MAGIC {
        if data.starts_with(magic) {
            return what;
        }
    }
    if data.len() >= 12 && data.starts_with(b"RIFF") {
        return match &data[8..12] {
            b"WEBP" => "webp",
            b"WAVE" => "wav",
            _ => "riff",
        };
    }
    if data.len() >= 12 && &data[4..8] == b"ftyp" {
        return "mp4";
    }
    if is_sentencepiece(data) {
        return "sentencepiece";
    }
    if is_text(data) {
        return if looks_like_json(data) {
            "json"
        } else {
            "text"
        };
    }
    "binary"
}

/// JSON starts with an object or an array (`[1`, `["a"`, `[{`, `[]`), not with a TOML or INI
/// table header (`[policy]`).
fn looks_like_json(data: &[u8]) -> bool {
    let mut rest = data
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(data)
        .iter()
        .skip_while(|b| b.is_ascii_whitespace());
    match rest.next() {
        Some(b'{') => true,
        Some(b'[') => matches!(
            rest.find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[' | b'"' | b']' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
        ),
        _ => false,
    }
}

/// How much of the content is looked at to call it text.
const TEXT_PROBE: usize = 64 * 1024;

/// UTF-8 (or UTF-16 with a byte-order mark) with no NUL and few control characters in the
/// first [`TEXT_PROBE`] bytes.
fn is_text(data: &[u8]) -> bool {
    if data.starts_with(b"\xff\xfe") || data.starts_with(b"\xfe\xff") {
        return data.len().is_multiple_of(2);
    }
    let probe = &data[..data.len().min(TEXT_PROBE)];
    let valid = match std::str::from_utf8(probe) {
        Ok(_) => true,
        // A multi-byte character cut by the probe's end is still text.
        Err(e) => e.error_len().is_none() && probe.len() == TEXT_PROBE,
    };
    if !valid {
        return false;
    }
    let control = probe
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    control == 0 || control * 100 < probe.len()
}

/// A SentencePiece `tokenizer.model`: a protobuf `ModelProto` whose first field is a
/// `SentencePiece` message (field 1, length-delimited) that itself starts with its `piece`
/// string (field 1).
fn is_sentencepiece(data: &[u8]) -> bool {
    let Some(rest) = data.strip_prefix(b"\x0a") else {
        return false;
    };
    let Some((len, used)) = varint(rest) else {
        return false;
    };
    let inner = &rest[used..];
    if len < 2 || len as usize > inner.len() {
        return false;
    }
    let Some(piece) = inner[..len as usize].strip_prefix(b"\x0a") else {
        return false;
    };
    let Some((plen, pused)) = varint(piece) else {
        return false;
    };
    piece
        .get(pused..pused + plen as usize)
        .is_some_and(|p| std::str::from_utf8(p).is_ok())
}

fn varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in data.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_claim_a_model_format() {
        assert!(claims_model_format(Some("model.pt")));
        assert!(claims_model_format(Some("dir/Model.PTH")));
        assert!(claims_model_format(Some("model.joblib.gz")));
        assert!(claims_model_format(Some("tokenizer.model")));
        assert!(!claims_model_format(Some("README.md")));
        assert!(!claims_model_format(Some("config.json")));
        assert!(!claims_model_format(Some("pt")));
        assert!(!claims_model_format(None));
    }

    #[test]
    fn kinds() {
        assert_eq!(classify(b"# Title\n", Some("README.md")), Some("text"));
        assert_eq!(classify(b"  {\"a\": 1}", Some("config.json")), Some("json"));
        assert_eq!(classify(b"[{\"a\": 1}]", Some("list.json")), Some("json"));
        assert_eq!(classify(b"[policy]\nx = 1\n", Some("a.toml")), Some("text"));
        assert_eq!(
            classify(b"\x89PNG\r\n\x1a\n....", Some("a.png")),
            Some("png")
        );
        assert_eq!(classify(b"\x00\x01\x02\x03", Some("blob")), Some("binary"));
        assert_eq!(classify(b"\x00\x01\x02\x03", Some("blob.bin")), None);
        assert_eq!(classify(b"", Some("__init__.py")), Some("empty"));
        assert_eq!(classify(b"# text", Some("x.pkl")), None);
        let spm = b"\x0a\x0c\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02";
        assert_eq!(
            classify(spm, Some("tokenizer.model")),
            Some("sentencepiece")
        );
    }

    #[test]
    fn text_with_a_cut_character_at_the_probe_end() {
        let mut t = vec![b'a'; TEXT_PROBE - 1];
        t.extend_from_slice("é".as_bytes());
        assert!(is_text(&t));
        assert!(!is_text(b"abc\xffdef"));
    }
}
