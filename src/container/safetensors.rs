//! safetensors: a JSON header and raw tensor bytes, no code. Validated as the reference Rust
//! crate does (and a little stricter: duplicate keys are refused), because a file that readers
//! disagree on, or with bytes no tensor covers, can hide a second meaning.

use super::{ids, Ctx, Scanned};
use crate::format::Format;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;

/// Largest header the reference reader accepts.
pub const MAX_HEADER_SIZE: u64 = 100_000_000;

/// Bits per element of a safetensors dtype name ([`crate::format::dtype::safetensors_bits`]).
pub fn dtype_bits(name: &str) -> Option<u64> {
    crate::format::dtype::safetensors_bits(name)
}

/// True when `data` has the shape of a safetensors file: a little-endian header length that
/// fits, followed by a JSON object.
pub fn looks_like(data: &[u8]) -> bool {
    if data.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    if !(2..=MAX_HEADER_SIZE).contains(&n) || n > (data.len() - 8) as u64 {
        return false;
    }
    let header = &data[8..8 + n as usize];
    header
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
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

/// Validate a safetensors file; `Err` says what is wrong.
pub fn validate(data: &[u8]) -> Result<usize, String> {
    if data.len() < 8 {
        return Err("file shorter than 8 bytes".into());
    }
    let n = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER_SIZE {
        return Err(format!("header length {n} exceeds {MAX_HEADER_SIZE}"));
    }
    let end = 8u64
        .checked_add(n)
        .filter(|&e| e <= data.len() as u64)
        .ok_or("header length runs past the end of the file")? as usize;
    let text = std::str::from_utf8(&data[8..end]).map_err(|_| "header is not UTF-8")?;
    let Pairs(pairs) = serde_json::from_str::<Pairs>(text)
        .map_err(|e| format!("header is not valid JSON: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    let mut tensors: Vec<(String, u64, u64)> = Vec::new();
    for (name, v) in &pairs {
        if !seen.insert(name.as_str()) {
            return Err(format!("duplicate key '{name}' in the header"));
        }
        if name == "__metadata__" {
            let obj = v.as_object().ok_or("__metadata__ is not an object")?;
            if obj.values().any(|x| !x.is_string()) {
                return Err("__metadata__ values must be strings".into());
            }
            continue;
        }
        let obj = v
            .as_object()
            .ok_or_else(|| format!("tensor '{name}' is not an object"))?;
        let dtype = obj
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| format!("tensor '{name}' has no dtype"))?;
        let bits =
            dtype_bits(dtype).ok_or_else(|| format!("tensor '{name}': unknown dtype '{dtype}'"))?;
        let shape = obj
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| format!("tensor '{name}' has no shape"))?;
        let mut count: u64 = 1;
        for d in shape {
            let d = d
                .as_u64()
                .ok_or_else(|| format!("tensor '{name}': shape holds a non-integer"))?;
            count = count
                .checked_mul(d)
                .ok_or_else(|| format!("tensor '{name}': size overflows"))?;
        }
        let total_bits = count
            .checked_mul(bits)
            .ok_or_else(|| format!("tensor '{name}': size overflows"))?;
        if total_bits % 8 != 0 {
            return Err(format!(
                "tensor '{name}': {total_bits} bits is not a whole number of bytes"
            ));
        }
        let offs = obj
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .ok_or_else(|| format!("tensor '{name}' has no data_offsets pair"))?;
        let (b, e) = match (offs[0].as_u64(), offs[1].as_u64()) {
            (Some(b), Some(e)) if e >= b => (b, e),
            _ => return Err(format!("tensor '{name}': bad data_offsets")),
        };
        if e - b != total_bits / 8 {
            return Err(format!(
                "tensor '{name}': data_offsets span {} bytes but dtype and shape need {}",
                e - b,
                total_bits / 8
            ));
        }
        tensors.push((name.clone(), b, e));
    }
    tensors.sort_by_key(|t| (t.1, t.2));
    let mut at = 0u64;
    for (name, b, e) in &tensors {
        if *b != at {
            return Err(format!(
                "tensor '{name}' starts at {b}, expected {at}: {}",
                if *b > at {
                    "gap between tensors"
                } else {
                    "overlapping tensors"
                }
            ));
        }
        at = *e;
    }
    let buffer = (data.len() - end) as u64;
    if at != buffer {
        return Err(if at < buffer {
            format!(
                "{} bytes after the last tensor are not covered by any tensor",
                buffer - at
            )
        } else {
            format!("tensors need {at} bytes but the data section has {buffer}")
        });
    }
    Ok(tensors.len())
}

/// Scan (validate) a safetensors file.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    let findings = match validate(data) {
        Ok(_) => Vec::new(),
        Err(e) => vec![ctx.anomaly(
            ids::SAFETENSORS_INVALID,
            Some(0),
            format!("invalid safetensors: {e}"),
        )],
    };
    Scanned {
        format: Format::Safetensors,
        findings,
    }
}
