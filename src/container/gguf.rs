//! GGUF: metadata and raw tensor blocks, no code. Validated as ggml's reader (`gguf.cpp`) does:
//! version, counts against the bytes left, string and array bounds, value and tensor types,
//! tensor offsets aligned, in order and in bounds.

use super::{ids, Ctx, Scanned};
use std::collections::HashSet;

const MAX_STRING: u64 = 1 << 30;
const MAX_ARRAY: u64 = 1 << 30;
const MAX_NAME: usize = 64;
const MAX_DIMS: u32 = 4;

/// `(block size, bytes per block)` of a ggml type id ([`crate::quant::block_layout`]).
pub fn type_size(t: u32) -> Option<(u64, u64)> {
    crate::quant::block_layout(t)
}

struct R<'a> {
    d: &'a [u8],
    i: usize,
    big: bool,
}

impl R<'_> {
    fn take(&mut self, n: u64, what: &str) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| format!("{what}: too large"))?;
        let end = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.d.len())
            .ok_or_else(|| format!("{what} at offset {} runs past the end of the file", self.i))?;
        let s = &self.d[self.i..end];
        self.i = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4, what)?.try_into().expect("4 bytes");
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b: [u8; 8] = self.take(8, what)?.try_into().expect("8 bytes");
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u64(what)?;
        if n > MAX_STRING {
            return Err(format!("{what}: string of {n} bytes is too long"));
        }
        let b = self.take(n, what)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }
    fn left(&self) -> u64 {
        (self.d.len() - self.i) as u64
    }
}

fn scalar_size(t: u32) -> Option<u64> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// Skip one metadata value of type `t`; returns its u32 value when it is a UINT32.
fn value(r: &mut R<'_>, t: u32, key: &str, nested: bool) -> Result<Option<u32>, String> {
    match t {
        8 => {
            r.string(key)?;
            Ok(None)
        }
        9 => {
            if nested {
                return Err(format!("key '{key}': nested arrays are rejected by ggml"));
            }
            let et = r.u32(key)?;
            let n = r.u64(key)?;
            if n > MAX_ARRAY {
                return Err(format!("key '{key}': array of {n} elements is too long"));
            }
            match scalar_size(et) {
                Some(s) => {
                    let bytes = n
                        .checked_mul(s)
                        .ok_or_else(|| format!("key '{key}': array size overflows"))?;
                    if et == 7 {
                        if r.take(bytes, key)?.iter().any(|&b| b > 1) {
                            return Err(format!("key '{key}': bool other than 0/1"));
                        }
                    } else {
                        r.take(bytes, key)?;
                    }
                }
                None => {
                    if n > r.left() / 8 + 1 {
                        return Err(format!("key '{key}': {n} elements cannot fit in the file"));
                    }
                    for _ in 0..n {
                        value(r, et, key, true)?;
                    }
                }
            }
            Ok(None)
        }
        7 => {
            if r.take(1, key)?[0] > 1 {
                return Err(format!("key '{key}': bool other than 0/1"));
            }
            Ok(None)
        }
        4 => Ok(Some(r.u32(key)?)),
        t => match scalar_size(t) {
            Some(s) => {
                r.take(s, key)?;
                Ok(None)
            }
            None => Err(format!("key '{key}' has invalid GGUF type {t}")),
        },
    }
}

/// Validate a GGUF file; `Err` says what ggml would reject.
pub fn validate(data: &[u8]) -> Result<u64, String> {
    if !data.starts_with(b"GGUF") {
        return Err("bad magic".into());
    }
    let mut r = R {
        d: data,
        i: 4,
        big: false,
    };
    let mut version = r.u32("version")?;
    if version != 0 && version & 0xFFFF == 0 {
        r.big = true;
        version = version.swap_bytes();
    }
    match version {
        2 | 3 => {}
        1 => return Err("GGUF v1 is no longer supported by ggml".into()),
        v => return Err(format!("unsupported GGUF version {v}")),
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("metadata count")?;
    // Each KV needs at least 12 bytes, each tensor info at least 24.
    if n_kv > r.left() / 12 || n_tensors > r.left() / 24 {
        return Err(format!(
            "{n_tensors} tensors and {n_kv} metadata entries cannot fit in the file"
        ));
    }
    let mut keys = HashSet::new();
    let mut alignment: u64 = 32;
    for _ in 0..n_kv {
        let key = r.string("metadata key")?;
        if key.is_empty() {
            return Err("empty metadata key".into());
        }
        if !keys.insert(key.clone()) {
            return Err(format!("duplicate metadata key '{key}'"));
        }
        let t = r.u32(&key)?;
        let v = value(&mut r, t, &key, false)?;
        if key == "general.alignment" {
            let a = v.ok_or("general.alignment is not a UINT32")?;
            if a == 0 || !a.is_power_of_two() {
                return Err(format!("general.alignment {a} is not a power of two"));
            }
            alignment = u64::from(a);
        }
    }
    let mut names = HashSet::new();
    let mut infos = Vec::new();
    for _ in 0..n_tensors {
        let name = r.string("tensor name")?;
        if name.len() >= MAX_NAME {
            return Err(format!(
                "tensor name '{name}' is {} bytes (limit {})",
                name.len(),
                MAX_NAME - 1
            ));
        }
        if !names.insert(name.clone()) {
            return Err(format!("duplicate tensor name '{name}'"));
        }
        let nd = r.u32(&name)?;
        if nd > MAX_DIMS {
            return Err(format!("tensor '{name}' has {nd} dimensions"));
        }
        let mut ne = Vec::new();
        for _ in 0..nd {
            let d = r.u64(&name)?;
            if d > i64::MAX as u64 {
                return Err(format!("tensor '{name}' has a negative dimension"));
            }
            ne.push(d);
        }
        let t = r.u32(&name)?;
        let off = r.u64(&name)?;
        let (blck, tsize) =
            type_size(t).ok_or_else(|| format!("tensor '{name}' has invalid ggml type {t}"))?;
        let ne0 = ne.first().copied().unwrap_or(1);
        if ne0 % blck != 0 {
            return Err(format!(
                "tensor '{name}': row of {ne0} is not a multiple of the block size {blck}"
            ));
        }
        let mut nbytes = (ne0 / blck)
            .checked_mul(tsize)
            .ok_or_else(|| format!("tensor '{name}': size overflows"))?;
        for &d in ne.iter().skip(1) {
            nbytes = nbytes
                .checked_mul(d)
                .ok_or_else(|| format!("tensor '{name}': size overflows"))?;
        }
        infos.push((name, off, nbytes));
    }
    let pad = |x: u64| x.div_ceil(alignment).checked_mul(alignment);
    let data_start = if n_tensors > 0 {
        pad(r.i as u64).ok_or("data offset overflows")?
    } else {
        r.i as u64
    };
    let mut expected = 0u64;
    let mut end = data_start;
    for (name, off, nbytes) in &infos {
        if *off != expected {
            return Err(format!(
                "tensor '{name}' has offset {off}, expected {expected} (ggml rejects it)"
            ));
        }
        end = data_start
            .checked_add(off + nbytes)
            .filter(|&e| e <= data.len() as u64)
            .ok_or_else(|| {
                format!("tensor '{name}' ({nbytes} bytes at {off}) runs past the end of the file")
            })?;
        expected = pad(off + nbytes).ok_or("offset overflows")?;
    }
    let padded_end = if infos.is_empty() {
        pad(r.i as u64).ok_or("offset overflows")?
    } else {
        data_start + expected
    };
    if (data.len() as u64) > padded_end.max(end) {
        return Err(format!(
            "{} bytes after the last tensor's data",
            data.len() as u64 - padded_end.max(end)
        ));
    }
    Ok(n_tensors)
}

/// The chat templates in a GGUF file's metadata: every string value whose key is
/// `tokenizer.chat_template` or starts with `tokenizer.chat_template.`, as `(key, offset of the
/// value, text)`. Reading stops at the first malformed entry (validation reports it).
pub fn chat_templates(data: &[u8]) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    if !data.starts_with(b"GGUF") {
        return out;
    }
    let mut r = R {
        d: data,
        i: 4,
        big: false,
    };
    let Ok(mut version) = r.u32("version") else {
        return out;
    };
    if version != 0 && version & 0xFFFF == 0 {
        r.big = true;
        version = version.swap_bytes();
    }
    if !(2..=3).contains(&version) {
        return out;
    }
    let (Ok(_), Ok(n_kv)) = (r.u64("tensor count"), r.u64("metadata count")) else {
        return out;
    };
    for _ in 0..n_kv.min(r.left() / 12) {
        let Ok(key) = r.string("metadata key") else {
            break;
        };
        let Ok(t) = r.u32(&key) else { break };
        let is_template =
            key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.");
        if t == 8 && is_template {
            let at = r.i as u64;
            match r.string(&key) {
                Ok(text) => out.push((key, at, text)),
                Err(_) => break,
            }
        } else if value(&mut r, t, &key, false).is_err() {
            break;
        }
    }
    out
}

/// Scan (validate) a GGUF file, and judge its chat templates.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let mut findings = match validate(data) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ctx.anomaly(ids::GGUF_INVALID, Some(0), format!("invalid GGUF: {e}"))],
    };
    for (key, at, text) in chat_templates(data) {
        findings.extend(super::template::findings(ctx, &text, &key, Some(at + 8)));
    }
    Scanned {
        format: "gguf".into(),
        findings,
    }
}
