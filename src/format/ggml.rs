//! Legacy GGML-family files (before GGUF): `ggml` (unversioned), `ggmf` v1, `ggjt` v1–3 and the
//! `ggla` LoRA adapters, in llama.cpp's layout (`convert_llama_ggml_to_gguf.py` reads the same).
//! The magic is a little-endian `u32`: the files start with `lmgg`, `fmgg`, `tjgg`, `algg`.
//!
//! Layout: magic, version (not for `ggml`), seven `u32` hyper-parameters (`n_vocab, n_embd,
//! n_mult, n_head, n_layer, n_rot, ftype`), `n_vocab` tokens (`u32` length, bytes, `f32` score
//! except in `ggml`), then tensor records to the end: `u32 n_dims, u32 name_len, u32 type`,
//! `n_dims` × `u32` dims, the name, (`ggjt`/`ggla`: zero padding to a multiple of 32 of the file
//! offset), and the data. `ggla` has `u32 version, i32 r, i32 alpha` and no vocabulary.
//! Every count and size is checked against the bytes left, with checked arithmetic.

/// Most vocabulary entries.
pub const MAX_VOCAB: u32 = 10_000_000;
/// Most layers.
pub const MAX_LAYERS: u32 = 1024;
/// Largest embedding size.
pub const MAX_EMBD: u32 = 1 << 20;
/// Longest token or tensor name.
pub const MAX_NAME: u32 = 4096;
/// Most tensor dimensions.
pub const MAX_DIMS: u32 = 4;
/// Most tensors.
pub const MAX_TENSORS: usize = 100_000;

/// Which member of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `ggml`: no version, no scores, no alignment.
    Ggml,
    /// `ggmf`: version 1, scores.
    Ggmf,
    /// `ggjt`: versions 1–3, scores, 32-byte aligned data.
    Ggjt,
    /// `ggla`: LoRA adapter, aligned data, no vocabulary.
    Ggla,
}

impl Flavour {
    /// The flavour of a file starting with `data`.
    pub fn of(data: &[u8]) -> Option<Flavour> {
        Some(match data.get(..4)? {
            b"lmgg" => Flavour::Ggml,
            b"fmgg" => Flavour::Ggmf,
            b"tjgg" => Flavour::Ggjt,
            b"algg" => Flavour::Ggla,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Ggml => "ggml",
            Flavour::Ggmf => "ggmf",
            Flavour::Ggjt => "ggjt",
            Flavour::Ggla => "ggla",
        }
    }
}

/// Why a file is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgmlError {
    /// Runs past the end of the file.
    #[error("{what} at offset {at} runs past the end of the file")]
    Truncated {
        /// What was being read.
        what: String,
        /// Its offset.
        at: usize,
    },
    /// A value outside what the format allows.
    #[error("{0}")]
    Invalid(String),
}

/// One tensor record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Name.
    pub name: String,
    /// ggml type id.
    pub ggml_type: u32,
    /// Dimensions, `ne0` first.
    pub dims: Vec<u64>,
    /// File offset of the data.
    pub offset: u64,
    /// Data size in bytes.
    pub size: u64,
}

/// A validated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ggml {
    /// Flavour.
    pub flavour: Flavour,
    /// Version (0 for `ggml`).
    pub version: u32,
    /// Hyper-parameters (`n_vocab, n_embd, n_mult, n_head, n_layer, n_rot, ftype`); zero for `ggla`.
    pub hparams: [u32; 7],
    /// Tensors in file order.
    pub tensors: Vec<Tensor>,
}

struct R<'a> {
    d: &'a [u8],
    i: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgmlError> {
        let trunc = || GgmlError::Truncated {
            what: what.to_string(),
            at: self.i,
        };
        let n = usize::try_from(n).map_err(|_| trunc())?;
        let end = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.d.len())
            .ok_or_else(trunc)?;
        let s = &self.d[self.i..end];
        self.i = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, GgmlError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn left(&self) -> u64 {
        (self.d.len() - self.i) as u64
    }
}

/// `(block size, bytes per block)` of a type in a file of this flavour and version: before GGJT
/// v3, Q4_0, Q4_1 and Q8_0 blocks had `f32` scales (`ggml.c` history); the removed Q4_2/Q4_3
/// (ids 4, 5) are refused, as llama.cpp refuses them.
fn type_size(t: u32, flavour: Flavour, version: u32) -> Option<(u64, u64)> {
    let old = !matches!(flavour, Flavour::Ggjt if version >= 3) && flavour != Flavour::Ggla;
    match t {
        2 if old => Some((32, 20)),
        3 if old => Some((32, 24)),
        8 if old => Some((32, 36)),
        _ => crate::quant::block_layout(t),
    }
}

/// Validate a file.
pub fn read(data: &[u8]) -> Result<Ggml, GgmlError> {
    let flavour =
        Flavour::of(data).ok_or_else(|| GgmlError::Invalid("not a GGML-family magic".into()))?;
    let mut r = R { d: data, i: 4 };
    let version = match flavour {
        Flavour::Ggml => 0,
        _ => r.u32("version")?,
    };
    let ok_version = match flavour {
        Flavour::Ggml => true,
        Flavour::Ggmf | Flavour::Ggla => version == 1,
        Flavour::Ggjt => (1..=3).contains(&version),
    };
    if !ok_version {
        return Err(GgmlError::Invalid(format!(
            "{} version {version} does not exist",
            flavour.name()
        )));
    }
    let mut hparams = [0u32; 7];
    if flavour == Flavour::Ggla {
        r.take(8, "LoRA r and alpha")?;
    } else {
        for h in &mut hparams {
            *h = r.u32("hyper-parameters")?;
        }
        let [n_vocab, n_embd, _, n_head, n_layer, n_rot, _] = hparams;
        if n_vocab > MAX_VOCAB || n_layer > MAX_LAYERS || n_embd > MAX_EMBD {
            return Err(GgmlError::Invalid(format!(
                "n_vocab {n_vocab}, n_layer {n_layer}, n_embd {n_embd}: beyond the limits ({MAX_VOCAB}, {MAX_LAYERS}, {MAX_EMBD})"
            )));
        }
        if n_head == 0 || n_rot > n_embd {
            return Err(GgmlError::Invalid(format!(
                "n_head {n_head}, n_rot {n_rot} for n_embd {n_embd}"
            )));
        }
        // Each token takes at least 4 bytes (8 with a score).
        let min = if flavour == Flavour::Ggml { 4 } else { 8 };
        if u64::from(n_vocab) * min > r.left() {
            return Err(GgmlError::Invalid(format!(
                "{n_vocab} vocabulary entries cannot fit in the file"
            )));
        }
        for i in 0..n_vocab {
            let len = r.u32("token length")?;
            if len >= MAX_NAME {
                return Err(GgmlError::Invalid(format!("token {i} is {len} bytes long")));
            }
            r.take(u64::from(len), "token")?;
            if flavour != Flavour::Ggml {
                r.take(4, "token score")?;
            }
        }
    }
    let aligned = matches!(flavour, Flavour::Ggjt | Flavour::Ggla);
    let mut tensors = Vec::new();
    while r.left() > 0 {
        if tensors.len() >= MAX_TENSORS {
            return Err(GgmlError::Invalid(format!(
                "more than {MAX_TENSORS} tensors"
            )));
        }
        let at = r.i;
        let n_dims = r.u32("tensor header")?;
        let name_len = r.u32("tensor header")?;
        let t = r.u32("tensor header")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgmlError::Invalid(format!(
                "tensor at {at} has {n_dims} dimensions"
            )));
        }
        if name_len == 0 || name_len >= MAX_NAME {
            return Err(GgmlError::Invalid(format!(
                "tensor at {at} has a name of {name_len} bytes"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(u64::from(r.u32("tensor dims")?));
        }
        let name =
            String::from_utf8_lossy(r.take(u64::from(name_len), "tensor name")?).into_owned();
        let (block, bytes) = type_size(t, flavour, version).ok_or_else(|| {
            GgmlError::Invalid(format!("tensor '{name}' has unknown ggml type {t}"))
        })?;
        if dims[0] % block != 0 {
            return Err(GgmlError::Invalid(format!(
                "tensor '{name}': row of {} is not a multiple of the block size {block}",
                dims[0]
            )));
        }
        let mut size = (dims[0] / block)
            .checked_mul(bytes)
            .ok_or_else(|| GgmlError::Invalid(format!("tensor '{name}': size overflows")))?;
        for d in &dims[1..] {
            size = size
                .checked_mul(*d)
                .ok_or_else(|| GgmlError::Invalid(format!("tensor '{name}': size overflows")))?;
        }
        if aligned {
            let pad = (32 - r.i % 32) % 32;
            let p = r.take(pad as u64, "tensor alignment")?;
            if p.iter().any(|&b| b != 0) {
                return Err(GgmlError::Invalid(format!(
                    "tensor '{name}': non-zero alignment padding"
                )));
            }
        }
        let offset = r.i as u64;
        r.take(size, &format!("tensor '{name}' data"))?;
        tensors.push(Tensor {
            name,
            ggml_type: t,
            dims,
            offset,
            size,
        });
    }
    Ok(Ggml {
        flavour,
        version,
        hparams,
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(
        flavour: &[u8],
        version: Option<u32>,
        vocab: &[&str],
        tensors: &[(&str, u32, &[u32])],
    ) -> Vec<u8> {
        let mut d = flavour.to_vec();
        if let Some(v) = version {
            d.extend(v.to_le_bytes());
        }
        for h in [vocab.len() as u32, 32, 256, 4, 1, 8, 0] {
            d.extend(h.to_le_bytes());
        }
        for t in vocab {
            d.extend((t.len() as u32).to_le_bytes());
            d.extend(t.as_bytes());
            if flavour != b"lmgg" {
                d.extend(0f32.to_le_bytes());
            }
        }
        for (name, t, dims) in tensors {
            for x in [dims.len() as u32, name.len() as u32, *t] {
                d.extend(x.to_le_bytes());
            }
            for x in *dims {
                d.extend(x.to_le_bytes());
            }
            d.extend(name.as_bytes());
            if flavour == b"tjgg" {
                while !d.len().is_multiple_of(32) {
                    d.push(0);
                }
            }
            let n: u32 = dims.iter().product();
            d.extend(vec![0u8; n as usize * if *t == 0 { 4 } else { 2 }]);
        }
        d
    }

    #[test]
    fn valid_and_invalid() {
        let v = file(
            b"tjgg",
            Some(3),
            &["a", "b"],
            &[("w", 0, &[32, 2]), ("n", 1, &[32])],
        );
        let g = read(&v).unwrap();
        assert_eq!(g.tensors.len(), 2);
        assert_eq!(g.tensors[0].offset % 32, 0);
        assert!(read(&file(b"lmgg", None, &["a"], &[("w", 1, &[8])])).is_ok());
        assert!(read(&file(b"fmgg", Some(2), &["a"], &[])).is_err());
        let mut cut = v.clone();
        cut.truncate(v.len() - 1);
        assert!(matches!(read(&cut), Err(GgmlError::Truncated { .. })));
        assert!(read(&file(b"tjgg", Some(3), &["a"], &[("w", 4, &[32])])).is_err());
        let mut huge = file(b"tjgg", Some(3), &[], &[]);
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&huge).is_err());
    }
}
