//! Tensor quantization into ggml block formats, bit-exact with ggml's reference quantizers.
//!
//! Every quantizer here reproduces ggml's `quantize_row_*_ref` functions (`ggml-quants.c`),
//! i.e. what `llama-quantize` writes when no importance matrix is given, byte for byte:
//! the same f32 arithmetic in the same order, the same three rounding primitives (`roundf`
//! for Q8_0, truncation of `v + 0.5/8.5/16.5` for the legacy 4/5-bit types, ties-to-even
//! `nearest_int` for the K-quants) and the same f16 rounding of the stored scales.
//!
//! Blocks run along the innermost (last torch/numpy) dimension, which GGUF calls `ne[0]`;
//! a row's length must be a multiple of the type's block size (see [`choose_type`]).
//!
//! Non-finite inputs (NaN, ±inf) are refused for the block types: ggml's reference has
//! undefined behaviour on them and llama.cpp rejects the resulting blocks. F32, F16 and BF16
//! keep them (see [`float`] for how NaN payloads are treated).

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use thiserror::Error;

pub mod float;
mod kquants;
mod lanes;
mod legacy;
pub mod mix;

pub use float::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};

/// K-quant super-block size (`QK_K`).
pub const QK_K: usize = 256;

/// Tensor element types, numbered as ggml's `enum ggml_type` (the ids stored in GGUF files).
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// Errors from quantization, dequantization and type parsing.
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Clone, PartialEq, Error)]
pub enum QuantError {
    #[error("unknown tensor type '{0}' (expected one of f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k)")]
    UnknownType(String),
    #[error("row length {row_len} is not a multiple of the {ty} block size {block_size}")]
    RowLength {
        ty: GgmlType,
        row_len: usize,
        block_size: usize,
    },
    #[error("{len} values do not form whole rows of {row_len}")]
    PartialRow { len: usize, row_len: usize },
    #[error("cannot quantize to {ty}: value {value} at index {index} is not finite")]
    NonFinite {
        ty: GgmlType,
        index: usize,
        value: f32,
    },
    #[error("{len} bytes are not a whole number of {ty} blocks of {type_size} bytes")]
    PartialBlock {
        ty: GgmlType,
        len: usize,
        type_size: usize,
    },
    #[error("{len} bytes are not a whole number of f32 values")]
    PartialValue { len: usize },
    #[error("output buffer has {got} bytes, {expected} needed")]
    OutputSize { expected: usize, got: usize },
    #[error("tensor size overflows")]
    Overflow,
    #[error("{0} is a storage type: values are not converted to it")]
    NotConvertible(GgmlType),
}

impl GgmlType {
    /// All supported types, in ggml id order.
    pub const ALL: [GgmlType; 13] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::BF16,
    ];

    /// The ggml type id (as stored in GGUF tensor infos).
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Types stored as they are (GGUF's integer and f64 tensors): never a conversion target.
    pub const STORAGE: [GgmlType; 5] = [
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
    ];

    /// The type with this ggml id, if it is one of the supported types.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Self::ALL
            .iter()
            .chain(Self::STORAGE.iter())
            .copied()
            .find(|t| t.id() == id)
    }

    /// Name as gguf-py spells it (`"Q4_K"`, `"F16"`, `"BF16"`).
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::BF16 => "BF16",
            GgmlType::I8 => "I8",
            GgmlType::I16 => "I16",
            GgmlType::I32 => "I32",
            GgmlType::I64 => "I64",
            GgmlType::F64 => "F64",
        }
    }

    /// Number of elements per block (1 for the float types).
    pub fn block_size(self) -> usize {
        self.layout().0 as usize
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.layout().1 as usize
    }

    fn layout(self) -> (u64, u64) {
        block_layout(self.id()).expect("every supported type is in the layout table")
    }

    /// True for the block-quantized types (everything except F32, F16 and BF16).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// True for the K-quants (super-blocks of 256).
    pub fn is_k_quant(self) -> bool {
        self.block_size() == QK_K
    }

    /// The `general.file_type` value (llama.cpp `llama_ftype` / gguf-py `LlamaFileType`) of a
    /// file whose weights are mostly of this type. The K-quants map to the `_S` variants
    /// (Q3_K_S, Q4_K_S, Q5_K_S), the uniform mixes; Q2_K and Q6_K have a single value.
    /// The storage types (integers, F64) have none of their own and give ALL_F32 (0).
    pub fn file_type(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64 | GgmlType::F64 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 7,
            GgmlType::Q5_0 => 8,
            GgmlType::Q5_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 14,
            GgmlType::Q5_K => 16,
            GgmlType::Q6_K => 18,
            GgmlType::BF16 => 32,
        }
    }

    /// Bytes needed for one row of `row_len` elements.
    pub fn row_size(self, row_len: usize) -> Result<usize, QuantError> {
        let bs = self.block_size();
        if !row_len.is_multiple_of(bs) {
            return Err(QuantError::RowLength {
                ty: self,
                row_len,
                block_size: bs,
            });
        }
        (row_len / bs)
            .checked_mul(self.type_size())
            .ok_or(QuantError::Overflow)
    }

    /// Bytes needed for a whole tensor of this shape (torch order: the last dimension is the
    /// row). A scalar (empty shape) has one element.
    pub fn nbytes(self, shape: &[usize]) -> Result<usize, QuantError> {
        let row_len = shape.last().copied().unwrap_or(1);
        let rows = shape[..shape.len().saturating_sub(1)]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or(QuantError::Overflow)?;
        self.row_size(row_len)?
            .checked_mul(rows)
            .ok_or(QuantError::Overflow)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GgmlType {
    type Err = QuantError;

    /// Parses a type name case-insensitively: `q4_0`, `Q4_K`, `f16`, `bf16`, … (also `fp16`,
    /// `fp32`, `float16`, `float32`, `bfloat16`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let ty = match lower.as_str() {
            "f32" | "fp32" | "float32" => GgmlType::F32,
            "f16" | "fp16" | "float16" => GgmlType::F16,
            "bf16" | "bfloat16" => GgmlType::BF16,
            _ => match Self::ALL
                .iter()
                .find(|t| t.name().eq_ignore_ascii_case(&lower))
            {
                Some(t) => *t,
                None => return Err(QuantError::UnknownType(s.to_string())),
            },
        };
        Ok(ty)
    }
}

/// Picks the type a tensor of this shape (torch order) is stored as when `requested` is asked
/// for, following llama.cpp (`convert_hf_to_gguf.py` for 1-D tensors, `llama_tensor_get_type`
/// for the fallbacks); the note says why when the answer differs from the request.
///
/// * Tensors with fewer than two dimensions (biases, norms, scalars) are stored as F32 whatever
///   was requested: llama.cpp's converter does the same, as most kernels expect F32 there.
/// * F32, F16 and BF16 fit any row.
/// * When the row length (last dimension, ggml `ne[0]`) is not a multiple of the block size,
///   K-quants fall back as llama.cpp does: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0; Q2_K and
///   Q3_K → Q4_0 (llama.cpp uses IQ4_NL there, which is not implemented here; Q4_0 has the same
///   size, 4.5 bits per weight). If 32 does not divide the row either, or a legacy type was
///   requested, the tensor is stored as F16.
pub fn choose_type(requested: GgmlType, shape: &[usize]) -> (GgmlType, Option<String>) {
    if requested == GgmlType::F32 {
        return (requested, None);
    }
    if shape.len() < 2 {
        let note = format!(
            "{}-D tensor kept as F32 instead of {requested}",
            shape.len()
        );
        return (GgmlType::F32, Some(note));
    }
    if !requested.is_quantized() {
        return (requested, None);
    }
    let row_len = shape[shape.len() - 1];
    if row_len.is_multiple_of(requested.block_size()) {
        return (requested, None);
    }
    let fallback = match requested {
        GgmlType::Q2_K | GgmlType::Q3_K => GgmlType::Q4_0,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        _ => GgmlType::F16,
    };
    let chosen = if row_len.is_multiple_of(fallback.block_size()) {
        fallback
    } else {
        GgmlType::F16
    };
    let note = format!(
        "row length {row_len} is not a multiple of the {requested} block size {}; using {chosen}",
        requested.block_size()
    );
    (chosen, Some(note))
}

/// Quantizes one or more whole blocks of `src` (its length must be a multiple of the block
/// size) and appends the encoded bytes to `dst`. Single-threaded.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut Vec<u8>) -> Result<(), QuantError> {
    let n = ty.row_size(src.len())?;
    let start = dst.len();
    dst.resize(start + n, 0);
    if let Err(e) = encode_blocks(ty, src, &mut dst[start..], 0) {
        dst.truncate(start);
        return Err(e);
    }
    Ok(())
}

/// Quantizes `data` (rows of `row_len` values, row-major) to `ty`, in parallel over blocks.
/// The output is identical whatever the number of threads.
pub fn quantize(ty: GgmlType, data: &[f32], row_len: usize) -> Result<Vec<u8>, QuantError> {
    let n = output_size(ty, data.len(), row_len)?;
    let mut out = vec![0u8; n];
    quantize_into(ty, data, row_len, &mut out)?;
    Ok(out)
}

/// Like [`quantize`], writing into a caller-provided buffer of exactly the right size
/// (see [`GgmlType::nbytes`]); useful to reuse one buffer across tensors.
pub fn quantize_into(
    ty: GgmlType,
    data: &[f32],
    row_len: usize,
    out: &mut [u8],
) -> Result<(), QuantError> {
    encode_parallel(ty, data, row_len, out)
}

/// Like [`quantize_into`], with the values given as little-endian f32 bytes (as stored in a
/// file), which are encoded without being copied into an f32 buffer first.
pub fn quantize_le_into(
    ty: GgmlType,
    bytes: &[u8],
    row_len: usize,
    out: &mut [u8],
) -> Result<(), QuantError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(QuantError::PartialValue { len: bytes.len() });
    }
    encode_parallel(ty, LeF32(bytes), row_len, out)
}

/// Input values of the encoders: `&[f32]`, or little-endian f32 bytes ([`LeF32`]). Generic
/// rather than an enum so that each block loop is compiled for its input.
trait Values: Copy + Send + Sync {
    /// Number of values.
    fn len(self) -> usize;
    fn get(self, i: usize) -> f32;
    /// Values `start..end`.
    fn range(self, start: usize, end: usize) -> Self;
    /// Call `f` on block `i` of `N` values.
    fn with_block<const N: usize, R>(self, i: usize, f: impl FnOnce(&[f32; N]) -> R) -> R;
}

impl Values for &[f32] {
    fn len(self) -> usize {
        <[f32]>::len(self)
    }
    fn get(self, i: usize) -> f32 {
        self[i]
    }
    fn range(self, start: usize, end: usize) -> Self {
        &self[start..end]
    }
    // The block is read in place: a copy to the stack read back in other widths stalls the
    // loads on the copy's stores (store forwarding), which cost Q4_0 a fifth of its time.
    #[inline(always)]
    fn with_block<const N: usize, R>(self, i: usize, f: impl FnOnce(&[f32; N]) -> R) -> R {
        f(self[i * N..(i + 1) * N].try_into().expect("a whole block"))
    }
}

/// Little-endian f32 values in bytes (a multiple of 4 of them).
#[derive(Clone, Copy)]
struct LeF32<'a>(&'a [u8]);

impl Values for LeF32<'_> {
    fn len(self) -> usize {
        self.0.len() / 4
    }
    fn get(self, i: usize) -> f32 {
        f32::from_le_bytes(self.0[4 * i..4 * i + 4].try_into().expect("4 bytes"))
    }
    fn range(self, start: usize, end: usize) -> Self {
        LeF32(&self.0[4 * start..4 * end])
    }
    #[inline(always)]
    fn with_block<const N: usize, R>(self, i: usize, f: impl FnOnce(&[f32; N]) -> R) -> R {
        let b = &self.0[4 * N * i..4 * N * (i + 1)];
        f(&std::array::from_fn(|j| {
            f32::from_le_bytes(b[4 * j..4 * j + 4].try_into().expect("4 bytes"))
        }))
    }
}

/// Encodes `data` in parallel chunks into `out`, which must have exactly the right size.
fn encode_parallel<V: Values>(
    ty: GgmlType,
    data: V,
    row_len: usize,
    out: &mut [u8],
) -> Result<(), QuantError> {
    let len = data.len();
    let n = output_size(ty, len, row_len)?;
    if out.len() != n {
        return Err(QuantError::OutputSize {
            expected: n,
            got: out.len(),
        });
    }
    // Blocks are independent, so chunks may cut rows anywhere on a block boundary.
    const CHUNK_ELEMS: usize = 1 << 16;
    let bs = ty.block_size();
    let elems = CHUNK_ELEMS.max(bs);
    let bytes = elems / bs * ty.type_size();
    let result = out
        .par_chunks_mut(bytes.max(1))
        .enumerate()
        .try_for_each(|(i, o)| {
            let start = i * elems;
            let end = (start + elems).min(len);
            encode_blocks(ty, data.range(start, end), o, start)
        });
    match result {
        // Several chunks may fail at once; report the first bad value, whatever the schedule.
        Err(QuantError::NonFinite { .. }) => {
            let index = (0..len).position(|i| !data.get(i).is_finite()).unwrap_or(0);
            Err(QuantError::NonFinite {
                ty,
                index,
                value: data.get(index),
            })
        }
        other => other,
    }
}

fn output_size(ty: GgmlType, len: usize, row_len: usize) -> Result<usize, QuantError> {
    if row_len == 0 {
        if len == 0 {
            return Ok(0);
        }
        return Err(QuantError::PartialRow { len, row_len });
    }
    if !len.is_multiple_of(row_len) {
        return Err(QuantError::PartialRow { len, row_len });
    }
    let per_row = ty.row_size(row_len)?;
    per_row
        .checked_mul(len / row_len)
        .ok_or(QuantError::Overflow)
}

/// True if any value is ±inf or NaN: the largest magnitude, compared as an integer, has an
/// all-ones exponent. An integer maximum is a reduction LLVM vectorizes (a fold of booleans
/// was compiled to one bit extraction per value).
#[inline(always)]
fn any_non_finite(x: &[f32]) -> bool {
    let largest = x
        .iter()
        .map(|v| (v.to_bits() & 0x7fff_ffff) as i32)
        .max()
        .unwrap_or(0);
    largest >= 0x7f80_0000
}

/// Encodes whole blocks; `src.len()` is a multiple of the block size and `dst` has exactly
/// the matching size. `base` is the index of `src[0]` in the tensor (for error messages).
fn encode_blocks<V: Values>(
    ty: GgmlType,
    src: V,
    dst: &mut [u8],
    base: usize,
) -> Result<(), QuantError> {
    let n = src.len();
    let ok = match ty {
        GgmlType::F32 => {
            for (i, o) in dst.chunks_exact_mut(4).enumerate().take(n) {
                o.copy_from_slice(&src.get(i).to_le_bytes());
            }
            return Ok(());
        }
        GgmlType::F16 => {
            for (i, o) in dst.chunks_exact_mut(2).enumerate().take(n) {
                o.copy_from_slice(&f32_to_f16(src.get(i)).to_le_bytes());
            }
            return Ok(());
        }
        GgmlType::BF16 => {
            for (i, o) in dst.chunks_exact_mut(2).enumerate().take(n) {
                o.copy_from_slice(&f32_to_bf16(src.get(i)).to_le_bytes());
            }
            return Ok(());
        }
        // The legacy types check the values while encoding them.
        GgmlType::Q8_0 => blocks::<_, 32, 34>(src, dst, legacy::quantize_q8_0),
        GgmlType::Q4_0 => blocks::<_, 32, 18>(src, dst, legacy::quantize_q4_0),
        GgmlType::Q4_1 => blocks::<_, 32, 20>(src, dst, legacy::quantize_q4_1),
        GgmlType::Q5_0 => blocks::<_, 32, 22>(src, dst, legacy::quantize_q5_0),
        GgmlType::Q5_1 => blocks::<_, 32, 24>(src, dst, legacy::quantize_q5_1),
        GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64 | GgmlType::F64 => {
            return Err(QuantError::NotConvertible(ty))
        }
        // The K-quants' searches are not meant for non-finite values: check them first.
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => {
            let block_fn: fn(&[f32], &mut [u8]) = match ty {
                GgmlType::Q2_K => kquants::quantize_q2_k,
                GgmlType::Q3_K => kquants::quantize_q3_k,
                GgmlType::Q4_K => kquants::quantize_q4_k,
                GgmlType::Q5_K => kquants::quantize_q5_k,
                _ => kquants::quantize_q6_k,
            };
            let ts = ty.type_size();
            // Four super-blocks at a time: the searches run on the sub-blocks of all four.
            // A group with a value that is not finite is not encoded.
            const GROUP: usize = 4 * QK_K;
            let mut bad = false;
            let mut groups = dst.chunks_exact_mut(4 * ts);
            for (i, o) in (&mut groups).enumerate() {
                src.with_block::<GROUP, _>(i, |x| {
                    bad |= any_non_finite(x);
                    if !bad {
                        block_fn(x, o);
                    }
                });
            }
            let last = groups.into_remainder();
            if !last.is_empty() && !bad {
                let first = n / GROUP * GROUP;
                let mut x = [0f32; GROUP];
                for (j, v) in x[..n - first].iter_mut().enumerate() {
                    *v = src.get(first + j);
                }
                bad |= any_non_finite(&x);
                if !bad {
                    block_fn(&x[..n - first], last);
                }
            }
            !bad
        }
    };
    if ok {
        return Ok(());
    }
    let j = (0..n).position(|i| !src.get(i).is_finite()).unwrap_or(0);
    Err(QuantError::NonFinite {
        ty,
        index: base + j,
        value: src.get(j),
    })
}

/// Runs a block quantizer over whole blocks, with the block sizes known at compile time and the
/// quantizer a function item (not a pointer), so that it is inlined and vectorized in place.
/// Returns false if a value was not finite (the output is then meaningless).
#[inline(always)]
fn blocks<V: Values, const BS: usize, const TS: usize>(
    src: V,
    dst: &mut [u8],
    f: impl Fn(&[f32], &mut [u8]),
) -> bool {
    let mut bad = false;
    for (i, o) in dst.chunks_exact_mut(TS).enumerate() {
        src.with_block::<BS, _>(i, |x| {
            bad |= any_non_finite(x);
            f(x, o);
        });
    }
    !bad
}

/// Decodes `bytes` (whole blocks of `ty`) back to f32, as ggml's `dequantize_row_*` do.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, QuantError> {
    let ts = ty.type_size();
    if !bytes.len().is_multiple_of(ts) {
        return Err(QuantError::PartialBlock {
            ty,
            len: bytes.len(),
            type_size: ts,
        });
    }
    let bs = ty.block_size();
    let mut out = vec![0f32; bytes.len() / ts * bs];
    for (b, y) in bytes.chunks_exact(ts).zip(out.chunks_exact_mut(bs)) {
        match ty {
            GgmlType::F32 => y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            GgmlType::F16 => y[0] = f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            GgmlType::BF16 => y[0] = bf16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            GgmlType::Q4_0 => legacy::dequantize_q4_0(b, y),
            GgmlType::Q4_1 => legacy::dequantize_q4_1(b, y),
            GgmlType::Q5_0 => legacy::dequantize_q5_0(b, y),
            GgmlType::Q5_1 => legacy::dequantize_q5_1(b, y),
            GgmlType::Q8_0 => legacy::dequantize_q8_0(b, y),
            GgmlType::Q2_K => kquants::dequantize_q2_k(b, y),
            GgmlType::Q3_K => kquants::dequantize_q3_k(b, y),
            GgmlType::Q4_K => kquants::dequantize_q4_k(b, y),
            GgmlType::Q5_K => kquants::dequantize_q5_k(b, y),
            GgmlType::Q6_K => kquants::dequantize_q6_k(b, y),
            GgmlType::I8 => y[0] = b[0] as i8 as f32,
            GgmlType::I16 => y[0] = i16::from_le_bytes([b[0], b[1]]) as f32,
            GgmlType::I32 => y[0] = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            GgmlType::I64 => y[0] = i64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32,
            GgmlType::F64 => y[0] = f64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32,
        }
    }
    Ok(out)
}

/// Reads a little-endian f16 at `b[i..i+2]` as f32.
#[inline]
pub(crate) fn read_f16(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Writes `v` as a little-endian f16 at `b[i..i+2]` and returns the stored value as f32.
#[inline]
pub(crate) fn write_f16(b: &mut [u8], i: usize, v: f32) -> f32 {
    let h = f32_to_f16(v);
    b[i..i + 2].copy_from_slice(&h.to_le_bytes());
    f16_to_f32(h)
}

/// `(block size, bytes per block)` of every ggml type id (ggml's `type_traits`), the one table
/// the GGUF reader, the legacy GGML reader and the quantizers share; `None` for removed or
/// unknown ids.
pub fn block_layout(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),
        1 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 40),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        16 => (256, 66),
        17 => (256, 74),
        18 => (256, 98),
        19 => (256, 50),
        20 => (32, 18),
        21 => (256, 110),
        22 => (256, 82),
        23 => (256, 136),
        24 => (1, 1),
        25 => (1, 2),
        26 => (1, 4),
        27 => (1, 8),
        28 => (1, 8),
        29 => (256, 56),
        30 => (1, 2),
        34 => (256, 54),
        35 => (256, 66),
        39 => (32, 17),
        40 => (64, 36),
        41 => (128, 18),
        42 => (64, 18),
        _ => return None,
    })
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn every_supported_type_has_a_layout() {
        for t in GgmlType::ALL.iter().chain(GgmlType::STORAGE.iter()) {
            let (block, bytes) = block_layout(t.id()).expect("in the table");
            assert!(block >= 1 && bytes >= 1, "{t:?}");
        }
        assert_eq!(GgmlType::Q4_K.type_size(), 144);
        assert_eq!(GgmlType::Q8_0.block_size(), 32);
        assert_eq!(block_layout(4), None, "Q4_2 was removed from ggml");
    }
}
