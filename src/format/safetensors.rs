//! safetensors: an 8-byte little-endian header length, a JSON header, raw tensor bytes. Read as
//! the reference Rust crate reads it (and a little stricter: duplicate keys are refused), because
//! a file that readers disagree on, or with bytes no tensor covers, can hide a second meaning.
//! The scan judges what [`read`] says; extraction takes its tensors from the same [`Header`].
//!
//! Written ([`Layout`]) as the reference serializer writes it (formats.md §5.1, §5.4): the JSON
//! header padded with spaces to a multiple of 8, then every tensor's bytes back to back, ordered
//! by dtype (widest first, the reference's `Dtype` order reversed) then by name, so every tensor
//! starts naturally aligned; `__metadata__` first in the JSON; the JSON compact. The header is
//! laid out before any data is written, so the data can be streamed tensor by tensor.

use super::dtype::DType;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// Largest header the reference reader accepts.
pub const MAX_HEADER_SIZE: u64 = 100_000_000;

/// True when `data` has the shape of a safetensors file: a little-endian header length that
/// fits, followed by a JSON object.
pub fn looks_like(data: &[u8]) -> bool {
    if data.len() < 10 {
        return false;
    }
    let n = header_len(data);
    if !(2..=MAX_HEADER_SIZE).contains(&n) || n > (data.len() - 8) as u64 {
        return false;
    }
    let header = &data[8..8 + n as usize];
    header
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// The header length field of `data` (at least 8 bytes).
fn header_len(data: &[u8]) -> u64 {
    u64::from_le_bytes(data[..8].try_into().expect("8 bytes"))
}

/// Why a file is not valid safetensors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetensorsError {
    /// Fewer bytes than the length field.
    #[error("file shorter than 8 bytes")]
    Short,
    /// A header larger than the reference reader accepts.
    #[error("header length {0} exceeds {MAX_HEADER_SIZE}")]
    HeaderTooLong(u64),
    /// The header runs past the end of the file.
    #[error("header length runs past the end of the file")]
    HeaderPastEnd,
    /// The header is not UTF-8.
    #[error("header is not UTF-8")]
    NotUtf8,
    /// The header is not a JSON object.
    #[error("header is not valid JSON: {0}")]
    Json(String),
    /// A key appears twice (readers disagree on which one counts).
    #[error("duplicate key '{0}' in the header")]
    DuplicateKey(String),
    /// `__metadata__` is not an object of strings.
    #[error("{0}")]
    Metadata(&'static str),
    /// A tensor entry is malformed.
    #[error("tensor '{name}'{problem}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        problem: TensorProblem,
    },
    /// Tensors leave a gap or overlap, in data order.
    #[error("tensor '{name}' starts at {begin}, expected {expected}: {}", if begin > expected { "gap between tensors" } else { "overlapping tensors" })]
    NotContiguous {
        /// The tensor that does not start where the previous one ended.
        name: String,
        /// Where it starts.
        begin: u64,
        /// Where the previous one ended.
        expected: u64,
    },
    /// Bytes after the last tensor.
    #[error("{0} bytes after the last tensor are not covered by any tensor")]
    Uncovered(u64),
    /// The tensors need more bytes than the file has.
    #[error("tensors need {need} bytes but the data section has {have}")]
    DataShort {
        /// Bytes the tensors span.
        need: u64,
        /// Bytes after the header.
        have: u64,
    },
}

/// What is wrong with one tensor entry (the text follows the tensor's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorProblem {
    /// Not a JSON object.
    #[error(" is not an object")]
    NotAnObject,
    /// No `dtype` string.
    #[error(" has no dtype")]
    NoDtype,
    /// A dtype the reference reader does not know.
    #[error(": unknown dtype '{0}'")]
    UnknownDtype(String),
    /// No `shape` array.
    #[error(" has no shape")]
    NoShape,
    /// A dimension that is not a non-negative integer.
    #[error(": shape holds a non-integer")]
    BadDimension,
    /// Its size does not fit in 64 bits.
    #[error(": size overflows")]
    Overflow,
    /// Its size is not a whole number of bytes (sub-byte dtypes).
    #[error(": {0} bits is not a whole number of bytes")]
    PartialByte(u64),
    /// No `data_offsets` pair.
    #[error(" has no data_offsets pair")]
    NoOffsets,
    /// Offsets that are not integers, or end before they begin.
    #[error(": bad data_offsets")]
    BadOffsets,
    /// Offsets that do not span what dtype and shape need.
    #[error(": data_offsets span {span} bytes but dtype and shape need {need}")]
    WrongSpan {
        /// Bytes the offsets span.
        span: u64,
        /// Bytes dtype and shape need.
        need: u64,
    },
}

/// One tensor of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Its name.
    pub name: String,
    /// Its dtype name (`F32`, `BF16`, …), known to the reference reader.
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its bytes, relative to the data section: `[begin, end)`.
    pub begin: u64,
    /// End of its bytes.
    pub end: u64,
}

/// A valid file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Where the data section starts in the file (`8 +` the header length).
    pub data_start: u64,
    /// The tensors, in data order (they cover the data section exactly).
    pub tensors: Vec<TensorEntry>,
}

/// The top-level JSON object as an ordered list of pairs, so duplicate keys can be seen.
struct Pairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Read and validate a safetensors file's header against the file's length.
pub fn read(data: &[u8]) -> Result<Header, SafetensorsError> {
    if data.len() < 8 {
        return Err(SafetensorsError::Short);
    }
    let n = header_len(data);
    if n > MAX_HEADER_SIZE {
        return Err(SafetensorsError::HeaderTooLong(n));
    }
    let end = 8u64
        .checked_add(n)
        .filter(|&e| e <= data.len() as u64)
        .ok_or(SafetensorsError::HeaderPastEnd)? as usize;
    let text = std::str::from_utf8(&data[8..end]).map_err(|_| SafetensorsError::NotUtf8)?;
    let Pairs(pairs) =
        serde_json::from_str::<Pairs>(text).map_err(|e| SafetensorsError::Json(e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    let mut tensors = Vec::new();
    for (name, v) in pairs {
        if !seen.insert(name.clone()) {
            return Err(SafetensorsError::DuplicateKey(name));
        }
        if name == "__metadata__" {
            let obj = v
                .as_object()
                .ok_or(SafetensorsError::Metadata("__metadata__ is not an object"))?;
            if obj.values().any(|x| !x.is_string()) {
                return Err(SafetensorsError::Metadata(
                    "__metadata__ values must be strings",
                ));
            }
            continue;
        }
        match tensor(&v) {
            Ok((dtype, shape, begin, end)) => tensors.push(TensorEntry {
                name,
                dtype,
                shape,
                begin,
                end,
            }),
            Err(problem) => return Err(SafetensorsError::Tensor { name, problem }),
        }
    }
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut at = 0u64;
    for t in &tensors {
        if t.begin != at {
            return Err(SafetensorsError::NotContiguous {
                name: t.name.clone(),
                begin: t.begin,
                expected: at,
            });
        }
        at = t.end;
    }
    let buffer = (data.len() - end) as u64;
    if at < buffer {
        return Err(SafetensorsError::Uncovered(buffer - at));
    }
    if at > buffer {
        return Err(SafetensorsError::DataShort {
            need: at,
            have: buffer,
        });
    }
    Ok(Header {
        data_start: end as u64,
        tensors,
    })
}

/// One tensor entry's dtype, shape and offsets, checked against each other.
fn tensor(v: &serde_json::Value) -> Result<(String, Vec<u64>, u64, u64), TensorProblem> {
    let obj = v.as_object().ok_or(TensorProblem::NotAnObject)?;
    let dtype = obj
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or(TensorProblem::NoDtype)?;
    let bits = super::dtype::safetensors_bits(dtype)
        .ok_or_else(|| TensorProblem::UnknownDtype(dtype.to_string()))?;
    let dims = obj
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or(TensorProblem::NoShape)?;
    let mut shape = Vec::with_capacity(dims.len());
    let mut count: u64 = 1;
    for d in dims {
        let d = d.as_u64().ok_or(TensorProblem::BadDimension)?;
        count = count.checked_mul(d).ok_or(TensorProblem::Overflow)?;
        shape.push(d);
    }
    let total_bits = count.checked_mul(bits).ok_or(TensorProblem::Overflow)?;
    if total_bits % 8 != 0 {
        return Err(TensorProblem::PartialByte(total_bits));
    }
    let offs = obj
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .ok_or(TensorProblem::NoOffsets)?;
    let (begin, end) = match (offs[0].as_u64(), offs[1].as_u64()) {
        (Some(b), Some(e)) if e >= b => (b, e),
        _ => return Err(TensorProblem::BadOffsets),
    };
    if end - begin != total_bits / 8 {
        return Err(TensorProblem::WrongSpan {
            span: end - begin,
            need: total_bits / 8,
        });
    }
    Ok((dtype.to_string(), shape, begin, end))
}

/// What the header of a file to write says of one tensor.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its dtype.
    pub dtype: DType,
    /// Its shape.
    pub shape: &'a [u64],
    /// Its bytes (dtype size times the element count).
    pub nbytes: u64,
}

/// The header of a safetensors file to write and the order its tensors' bytes follow in.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `N` (u64 LE) followed by the padded JSON header.
    pub head: Vec<u8>,
    /// Indices into the tensor list, in data order.
    pub order: Vec<usize>,
    /// Total bytes of tensor data.
    pub data_len: u64,
}

impl Layout {
    /// Lay out `tensors` with `metadata` (string to string).
    pub fn new(tensors: &[Planned<'_>], metadata: &BTreeMap<String, String>) -> Layout {
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by(|&a, &b| {
            let (ta, tb) = (&tensors[a], &tensors[b]);
            tb.dtype.cmp(&ta.dtype).then_with(|| ta.name.cmp(tb.name))
        });
        let mut json = String::from("{");
        let mut first = true;
        if !metadata.is_empty() {
            json.push_str("\"__metadata__\":");
            json.push_str(&serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into()));
            first = false;
        }
        let mut offset = 0u64;
        for &i in &order {
            let t = &tensors[i];
            let end = offset + t.nbytes;
            if !first {
                json.push(',');
            }
            first = false;
            json.push_str(&quote(t.name));
            json.push_str(":{\"dtype\":\"");
            json.push_str(t.dtype.safetensors_name());
            json.push_str("\",\"shape\":[");
            let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            json.push_str(&dims.join(","));
            json.push_str(&format!("],\"data_offsets\":[{offset},{end}]}}"));
            offset = end;
        }
        json.push('}');
        let mut header = json.into_bytes();
        let padded = header.len().next_multiple_of(8);
        header.resize(padded, b' ');
        let mut head = Vec::with_capacity(8 + header.len());
        head.extend_from_slice(&(header.len() as u64).to_le_bytes());
        head.extend_from_slice(&header);
        Layout {
            head,
            order,
            data_len: offset,
        }
    }

    /// Total file size.
    pub fn file_len(&self) -> u64 {
        self.head.len() as u64 + self.data_len
    }

    /// Replace the value of metadata entry `key` by one of the same length (used to fill in a
    /// value known only once the data is written). False if not found or the lengths differ.
    pub fn patch_metadata(&mut self, key: &str, old: &str, new: &str) -> bool {
        if old.len() != new.len() {
            return false;
        }
        let needle = format!("{}:{}", quote(key), quote(old)).into_bytes();
        let replacement = format!("{}:{}", quote(key), quote(new)).into_bytes();
        match memchr::memmem::find(&self.head, &needle) {
            Some(at) => {
                self.head[at..at + needle.len()].copy_from_slice(&replacement);
                true
            }
            None => false,
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.resize(v.len() + data, 0);
        v
    }

    #[test]
    fn a_valid_header_lists_its_tensors_in_data_order() {
        let h = r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let header = read(&file(h, 16)).unwrap();
        assert_eq!(header.data_start, 8 + h.len() as u64);
        let names: Vec<_> = header.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(header.tensors[1].shape, [2]);
    }

    #[test]
    fn each_problem_has_its_message() {
        let one = |h: &str, data| read(&file(h, data)).unwrap_err().to_string();
        assert_eq!(
            one(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                4
            ),
            "tensor 'a': data_offsets span 4 bytes but dtype and shape need 8"
        );
        assert_eq!(
            one(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                6
            ),
            "2 bytes after the last tensor are not covered by any tensor"
        );
        assert_eq!(
            one(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8
            ),
            "tensor 'a' starts at 4, expected 0: gap between tensors"
        );
        assert_eq!(
            one(r#"{"__metadata__":{},"__metadata__":{}}"#, 0),
            "duplicate key '__metadata__' in the header"
        );
        assert_eq!(
            one(r#"{"a":{"dtype":"Q9","shape":[],"data_offsets":[0,0]}}"#, 0),
            "tensor 'a': unknown dtype 'Q9'"
        );
        assert_eq!(read(&[1, 2]).unwrap_err(), SafetensorsError::Short);
    }

    fn planned(name: &'static str, dtype: DType, shape: &'static [u64]) -> Planned<'static> {
        let n: u64 = shape.iter().product();
        Planned {
            name,
            dtype,
            shape,
            nbytes: n * dtype.size() as u64,
        }
    }

    #[test]
    fn the_layout_is_the_reference_serializers() {
        // safetensors.torch.save_file({'a': zeros(0,3), 's': tensor(1.5), 'b': arange(4.)})
        let ts = [
            planned("a", DType::F32, &[0, 3]),
            planned("s", DType::F32, &[]),
            planned("b", DType::F32, &[4]),
        ];
        let p = Layout::new(&ts, &BTreeMap::new());
        let expected = br#"{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"s":{"dtype":"F32","shape":[],"data_offsets":[16,20]}}    "#;
        assert_eq!(&p.head[..8], &(expected.len() as u64).to_le_bytes());
        assert_eq!(&p.head[8..], &expected[..]);
        assert_eq!(p.data_len, 20);
    }

    #[test]
    fn tensors_follow_in_dtype_order_then_name() {
        let ts = [
            planned("z", DType::BOOL, &[1]),
            planned("y", DType::U64, &[1]),
            planned("x", DType::BF16, &[1]),
            planned("w", DType::F16, &[1]),
            planned("v", DType::F8_E4M3, &[1]),
            planned("u", DType::F32, &[1]),
        ];
        let p = Layout::new(&ts, &BTreeMap::new());
        let names: Vec<&str> = p.order.iter().map(|&i| ts[i].name).collect();
        assert_eq!(names, ["y", "u", "x", "w", "v", "z"]);
        // What is written reads back, in the same order.
        let mut file = p.head.clone();
        file.resize(p.file_len() as usize, 0);
        let back: Vec<String> = read(&file)
            .unwrap()
            .tensors
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(back, names);
    }

    #[test]
    fn metadata_comes_first_and_can_be_filled_in() {
        let mut m = BTreeMap::new();
        m.insert("format".to_string(), "pt".to_string());
        m.insert("h".to_string(), "0000".to_string());
        let mut p = Layout::new(&[planned("a", DType::U8, &[2])], &m);
        assert!(p.head[8..].starts_with(br#"{"__metadata__":{"format":"pt","h":"0000"},"a""#));
        assert!(p.patch_metadata("h", "0000", "abcd"));
        assert!(!p.patch_metadata("h", "0000", "abcde"));
        assert!(p.head[8..].starts_with(br#"{"__metadata__":{"format":"pt","h":"abcd"}"#));
        assert_eq!(p.head.len() % 8, 0);
    }
}
