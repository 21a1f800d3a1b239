//! GGUF's header, read as ggml's reader (`gguf.cpp`) reads it:
//! version, counts against the bytes left, string and array bounds, value and tensor types,
//! tensor offsets aligned, in order and in bounds.
//!
//! The header is walked once, by [`read_header`], over any [`RandomAccess`] input: the scan runs
//! it on the whole file, the remote scan on what it has fetched (a miss says what to fetch).

use super::{ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS, MAX_TENSOR_NAME_BYTES};
use crate::format::access::{Missing, RandomAccess};
use std::collections::HashSet;

/// Longest string and array read (ggml's reader has no lower bound than the file's size).
const MAX_STRING: u64 = 1 << 30;
const MAX_ARRAY: u64 = 1 << 30;

/// Why a header walk (or a file's validation) stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The walk needs bytes the input does not have yet.
    #[error("bytes {}..{} missing", .0.start, .0.end)]
    Missing(Missing),
    /// ggml would reject the file.
    #[error("{0}")]
    Invalid(String),
}

impl From<String> for HeaderError {
    fn from(m: String) -> Self {
        HeaderError::Invalid(m)
    }
}

impl From<&str> for HeaderError {
    fn from(m: &str) -> Self {
        HeaderError::Invalid(m.into())
    }
}

/// A GGUF header as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Tensors.
    pub n_tensors: u64,
    /// End of the tensor infos (where the padding before the data starts).
    pub infos_end: u64,
    /// `general.alignment` (32 when absent).
    pub alignment: u64,
    /// `(name, offset in the data section, bytes)` of each tensor.
    pub tensors: Vec<(String, u64, u64)>,
    /// The first problem that did not stop the walk (an empty or repeated key, a bad alignment
    /// or bool value): the walk goes on, so templates after it are still read.
    pub problem: Option<String>,
}

struct R<'a, S: ?Sized> {
    src: &'a S,
    i: u64,
    big: bool,
}

impl<'a, S: RandomAccess + ?Sized> R<'a, S> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], HeaderError> {
        let end = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.src.size())
            .ok_or_else(|| format!("{what} at offset {} runs past the end of the file", self.i))?;
        let s = self.src.get(self.i, end).map_err(HeaderError::Missing)?;
        self.i = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, HeaderError> {
        let b: [u8; 4] = self.take(4, what)?.try_into().expect("4 bytes");
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&mut self, what: &str) -> Result<u64, HeaderError> {
        let b: [u8; 8] = self.take(8, what)?.try_into().expect("8 bytes");
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    fn string(&mut self, what: &str) -> Result<String, HeaderError> {
        let n = self.u64(what)?;
        if n > MAX_STRING {
            return Err(format!("{what}: string of {n} bytes is too long").into());
        }
        let b = self.take(n, what)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }
    fn left(&self) -> u64 {
        self.src.size().saturating_sub(self.i)
    }
}

/// Skip one metadata value of type `t`; returns its u32 value when it is a UINT32. A bool other
/// than 0/1 is noted in `problem` (ggml rejects it; the walk can go on).
fn value<S: RandomAccess + ?Sized>(
    r: &mut R<'_, S>,
    t: u32,
    key: &str,
    nested: bool,
    problem: &mut Option<String>,
) -> Result<Option<u32>, HeaderError> {
    let bools = |b: &[u8], problem: &mut Option<String>| {
        if b.iter().any(|&b| b > 1) {
            problem.get_or_insert_with(|| format!("key '{key}': bool other than 0/1"));
        }
    };
    match ValueType::from_id(t) {
        Some(ValueType::String) => {
            r.string(key)?;
            Ok(None)
        }
        Some(ValueType::Array) => {
            if nested {
                return Err(format!("key '{key}': nested arrays are rejected by ggml").into());
            }
            let et = r.u32(key)?;
            let n = r.u64(key)?;
            if n > MAX_ARRAY {
                return Err(format!("key '{key}': array of {n} elements is too long").into());
            }
            let element = ValueType::from_id(et);
            match element.and_then(ValueType::scalar_size) {
                Some(s) => {
                    let bytes = n
                        .checked_mul(s)
                        .ok_or_else(|| format!("key '{key}': array size overflows"))?;
                    let b = r.take(bytes, key)?;
                    if element == Some(ValueType::Bool) {
                        bools(b, problem);
                    }
                }
                None => {
                    if n > r.left() / 8 + 1 {
                        return Err(
                            format!("key '{key}': {n} elements cannot fit in the file").into()
                        );
                    }
                    for _ in 0..n {
                        value(r, et, key, true, problem)?;
                    }
                }
            }
            Ok(None)
        }
        Some(ValueType::Bool) => {
            let b = r.take(1, key)?;
            bools(b, problem);
            Ok(None)
        }
        Some(ValueType::U32) => Ok(Some(r.u32(key)?)),
        Some(fixed) => {
            if let Some(s) = fixed.scalar_size() {
                r.take(s, key)?;
            }
            Ok(None)
        }
        None => Err(format!("key '{key}' has invalid GGUF type {t}").into()),
    }
}

/// Walk the header: version, metadata (chat templates kept) and tensor infos. Templates read
/// before a walk stops are in `templates` whatever the result.
pub fn read_header<S: RandomAccess + ?Sized>(
    src: &S,
    templates: &mut Vec<(String, u64, String)>,
) -> Result<Header, HeaderError> {
    let mut r = R {
        src,
        i: 0,
        big: false,
    };
    if r.take(4, "magic")? != GGUF_MAGIC {
        return Err("bad magic".into());
    }
    let mut version = r.u32("version")?;
    if version != 0 && version & 0xFFFF == 0 {
        r.big = true;
        version = version.swap_bytes();
    }
    match version {
        2 | 3 => {}
        1 => return Err("GGUF v1 is no longer supported by ggml".into()),
        v => return Err(format!("unsupported GGUF version {v}").into()),
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("metadata count")?;
    // Each KV needs at least 12 bytes, each tensor info at least 24: counts beyond that are a
    // problem, and the walk reads what can be there (templates included).
    let mut problem = None;
    let (kv_room, tensor_room) = (r.left() / 12, r.left() / 24);
    if n_kv > kv_room || n_tensors > tensor_room {
        problem = Some(format!(
            "{n_tensors} tensors and {n_kv} metadata entries cannot fit in the file"
        ));
    }
    let mut keys = HashSet::new();
    let mut alignment = u64::from(DEFAULT_ALIGNMENT);
    for _ in 0..n_kv.min(kv_room) {
        let key = r.string("metadata key")?;
        if key.is_empty() {
            problem.get_or_insert_with(|| "empty metadata key".to_string());
        }
        if !keys.insert(key.clone()) {
            problem.get_or_insert_with(|| format!("duplicate metadata key '{key}'"));
        }
        let t = r.u32(&key)?;
        let is_template =
            key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.");
        if t == ValueType::String as u32 && is_template {
            let at = r.i;
            let text = r.string(&key)?;
            templates.push((key, at, text));
            continue;
        }
        let v = value(&mut r, t, &key, false, &mut problem)?;
        if key == "general.alignment" {
            match v {
                Some(a) if a != 0 && a.is_power_of_two() => alignment = u64::from(a),
                Some(a) => {
                    problem.get_or_insert_with(|| {
                        format!("general.alignment {a} is not a power of two")
                    });
                }
                None => {
                    problem.get_or_insert_with(|| "general.alignment is not a UINT32".into());
                }
            }
        }
    }
    let mut names = HashSet::new();
    let mut tensors = Vec::new();
    for _ in 0..n_tensors.min(tensor_room) {
        let name = r.string("tensor name")?;
        if name.len() > MAX_TENSOR_NAME_BYTES {
            return Err(format!(
                "tensor name '{name}' is {} bytes (limit {MAX_TENSOR_NAME_BYTES})",
                name.len(),
            )
            .into());
        }
        if !names.insert(name.clone()) {
            return Err(format!("duplicate tensor name '{name}'").into());
        }
        let nd = r.u32(&name)?;
        if nd as usize > MAX_DIMS {
            return Err(format!("tensor '{name}' has {nd} dimensions").into());
        }
        let mut ne = Vec::new();
        for _ in 0..nd {
            let d = r.u64(&name)?;
            if d > i64::MAX as u64 {
                return Err(format!("tensor '{name}' has a negative dimension").into());
            }
            ne.push(d);
        }
        let t = r.u32(&name)?;
        let off = r.u64(&name)?;
        let (blck, tsize) = crate::quant::block_layout(t)
            .ok_or_else(|| format!("tensor '{name}' has invalid ggml type {t}"))?;
        let ne0 = ne.first().copied().unwrap_or(1);
        if ne0 % blck != 0 {
            return Err(format!(
                "tensor '{name}': row of {ne0} is not a multiple of the block size {blck}"
            )
            .into());
        }
        let mut nbytes = (ne0 / blck)
            .checked_mul(tsize)
            .ok_or_else(|| format!("tensor '{name}': size overflows"))?;
        for &d in ne.iter().skip(1) {
            nbytes = nbytes
                .checked_mul(d)
                .ok_or_else(|| format!("tensor '{name}': size overflows"))?;
        }
        tensors.push((name, off, nbytes));
    }
    Ok(Header {
        n_tensors,
        infos_end: r.i,
        alignment,
        tensors,
        problem,
    })
}

/// Validate a GGUF file; `Err` says what ggml would reject.
pub fn validate(data: &[u8]) -> Result<u64, HeaderError> {
    check(data, &mut Vec::new())
}

/// [`validate`], keeping the chat templates read on the way.
pub(crate) fn check(
    data: &[u8],
    templates: &mut Vec<(String, u64, String)>,
) -> Result<u64, HeaderError> {
    let h = read_header(data, templates)?;
    if let Some(p) = h.problem {
        return Err(HeaderError::Invalid(p));
    }
    let alignment = h.alignment;
    let pad = |x: u64| x.div_ceil(alignment).checked_mul(alignment);
    let data_start = if h.n_tensors > 0 {
        pad(h.infos_end).ok_or("data offset overflows")?
    } else {
        h.infos_end
    };
    let mut expected = 0u64;
    let mut end = data_start;
    for (name, off, nbytes) in &h.tensors {
        if *off != expected {
            return Err(HeaderError::Invalid(format!(
                "tensor '{name}' has offset {off}, expected {expected} (ggml rejects it)"
            )));
        }
        end = data_start
            .checked_add(off + nbytes)
            .filter(|&e| e <= data.len() as u64)
            .ok_or_else(|| {
                format!("tensor '{name}' ({nbytes} bytes at {off}) runs past the end of the file")
            })?;
        expected = pad(off + nbytes).ok_or("offset overflows")?;
    }
    let padded_end = if h.tensors.is_empty() {
        pad(h.infos_end).ok_or("offset overflows")?
    } else {
        data_start + expected
    };
    if (data.len() as u64) > padded_end.max(end) {
        return Err(HeaderError::Invalid(format!(
            "{} bytes after the last tensor's data",
            data.len() as u64 - padded_end.max(end)
        )));
    }
    Ok(h.n_tensors)
}

/// The chat templates in a GGUF file's metadata: every string value whose key is
/// `tokenizer.chat_template` or starts with `tokenizer.chat_template.`, as `(key, offset of the
/// value, text)`. Reading stops at the first entry that cannot be walked past.
pub fn chat_templates(data: &[u8]) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let _ = read_header(data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::access::Partial;

    /// A GGUF v3 header: one string key, one template, one F32 tensor info.
    fn header() -> Vec<u8> {
        let mut d = b"GGUF".to_vec();
        d.extend(3u32.to_le_bytes());
        d.extend(1u64.to_le_bytes()); // tensors
        d.extend(2u64.to_le_bytes()); // kvs
        for (k, v) in [("name", "hi"), ("tokenizer.chat_template", "{{ x }}")] {
            d.extend((k.len() as u64).to_le_bytes());
            d.extend(k.as_bytes());
            d.extend(8u32.to_le_bytes());
            d.extend((v.len() as u64).to_le_bytes());
            d.extend(v.as_bytes());
        }
        d.extend(1u64.to_le_bytes());
        d.extend(b"t");
        d.extend(1u32.to_le_bytes());
        d.extend(4u64.to_le_bytes());
        d.extend(0u32.to_le_bytes());
        d.extend(0u64.to_le_bytes());
        d
    }

    #[test]
    fn the_header_walk_runs_on_whole_and_partial_inputs() {
        let d = header();
        let end = d.len() as u64;
        let mut t = Vec::new();
        let h = read_header(&d[..], &mut t).unwrap();
        assert_eq!((h.n_tensors, h.infos_end, h.alignment), (1, end, 32));
        assert_eq!(h.tensors, vec![("t".to_string(), 0, 16)]);
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].0.as_str(), t[0].2.as_str()),
            ("tokenizer.chat_template", "{{ x }}")
        );
        // Only the first 30 bytes fetched: the walk asks for the next field.
        let p = Partial {
            data: &d,
            have: (0, 30),
        };
        assert_eq!(
            read_header(&p, &mut Vec::new()),
            Err(HeaderError::Missing(Missing { start: 24, end: 32 }))
        );
        let v1 = b"GGUF\x01\0\0\0";
        assert!(matches!(
            read_header(&v1[..], &mut Vec::new()),
            Err(HeaderError::Invalid(_))
        ));
    }

    #[test]
    fn a_template_after_a_repeated_key_is_still_read() {
        // Two `tokenizer.chat_template` keys: ggml rejects the file, and both texts are judged.
        let mut d = header();
        let mut twice = b"GGUF".to_vec();
        twice.extend_from_slice(&d[4..24]);
        let key = b"tokenizer.chat_template";
        for v in ["a", "{{ x }}"] {
            twice.extend((key.len() as u64).to_le_bytes());
            twice.extend(key);
            twice.extend(8u32.to_le_bytes());
            twice.extend((v.len() as u64).to_le_bytes());
            twice.extend(v.as_bytes());
        }
        let infos = d.len() - (8 + 1 + 4 + 8 + 4 + 8);
        twice.extend_from_slice(&d[infos..]);
        d = twice;
        let mut t = Vec::new();
        let h = read_header(&d[..], &mut t).unwrap();
        assert!(h.problem.unwrap().contains("duplicate metadata key"));
        assert_eq!(t.len(), 2, "both templates are judged");
        assert!(validate(&d).unwrap_err().to_string().contains("duplicate"));
    }
}
