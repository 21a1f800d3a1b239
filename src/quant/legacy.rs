//! The 32-element block types Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (ggml `quantize_row_q*_ref`).
//!
//! Layouts (all little-endian): Q4_0 `d f16 | qs[16]`, Q4_1 `d f16 | m f16 | qs[16]`,
//! Q5_0 `d f16 | qh u32 | qs[16]`, Q5_1 `d f16 | m f16 | qh u32 | qs[16]`, Q8_0 `d f16 | qs i8[32]`.
//! Nibbles: `qs[j]` holds element `j` in its low half and element `j + 16` in its high half;
//! bit `j` of `qh` is bit 4 of element `j`.
//!
//! The scale is computed and used in f32; it is stored as f16 afterwards (the rounded value is
//! not used for quantizing these types).

use super::{read_f16, write_f16};

const QK: usize = 32;

/// The signed value with the largest magnitude (first one on ties) — Q4_0/Q5_0 scale source.
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

#[inline]
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// 2^23: adding it to a non-negative value below 2^22 rounds that value to an integer (ties to
/// even) and leaves the integer in the low mantissa bits of the sum.
const MAGIC: f32 = 8_388_608.0;

/// `roundf` (nearest, ties away from zero) as an integer, for |v| < 2^22; ±inf and NaN give
/// a multiple of 256 (low byte 0, what ggml's `(int8_t)` cast of them gives on x86-64).
///
/// Written without float→int casts (Rust's `as` saturates, which keeps LLVM from vectorizing
/// the block loops): `|v| + 2^23` rounds to nearest even, a tie that went down is bumped up,
/// and the sign is applied to the integer.
#[inline(always)]
fn round_away(v: f32) -> i32 {
    let a = v.abs();
    let s = a + MAGIC;
    let tie_down = (a - (s - MAGIC) == 0.5) as i32;
    let n = s.to_bits().wrapping_sub(MAGIC.to_bits()) as i32 + tie_down;
    let neg = (v.to_bits() as i32) >> 31;
    (n ^ neg) - neg
}

/// Truncation toward zero of a non-negative `y` below 2^22, as a byte; ±inf and NaN give 0
/// (as ggml's `(int8_t)` cast of them on x86-64).
#[inline(always)]
fn trunc_byte(y: f32) -> u8 {
    let s = y + MAGIC;
    let rounded_up = (s - MAGIC > y) as u32;
    s.to_bits()
        .wrapping_sub(MAGIC.to_bits())
        .wrapping_sub(rounded_up) as u8
}

#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn min(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// Folds `f(v)` over a block with `op` in eight independent lanes, then across the lanes,
/// so that LLVM vectorizes it. Only for operations whose result does not depend on the order
/// (max or min of finite values, up to the sign of zeros).
#[inline(always)]
fn fold_lanes(x: &[f32; QK], op: impl Fn(f32, f32) -> f32, f: impl Fn(f32) -> f32) -> f32 {
    let mut m: [f32; 8] = std::array::from_fn(|l| f(x[l]));
    for c in x[8..].chunks_exact(8) {
        for l in 0..8 {
            m[l] = op(m[l], f(c[l]));
        }
    }
    let h: [f32; 4] = std::array::from_fn(|l| op(m[l], m[l + 4]));
    op(op(h[0], h[2]), op(h[1], h[3]))
}

/// Largest magnitude of a block (ggml's `MAX(amax, fabsf(v))` loop).
#[inline(always)]
fn abs_max(x: &[f32; QK]) -> f32 {
    fold_lanes(x, max, f32::abs)
}

/// [`signed_absmax`] for a whole block without a data-dependent branch per element: from the
/// largest and the smallest value, unless both `+a` and `-a` occur (then the first one wins,
/// found by the sequential scan).
#[inline(always)]
fn signed_absmax_block(x: &[f32; QK]) -> f32 {
    let hi = fold_lanes(x, max, |v| v);
    let lo = fold_lanes(x, min, |v| v);
    if hi == -lo {
        return if hi == 0.0 {
            // All zeros (of either sign): ggml keeps its initial +0.
            0.0
        } else {
            signed_absmax(x)
        };
    }
    // Which one wins is a coin toss on real data: a select by mask, not a branch the CPU
    // would mispredict half the time.
    let take_hi = 0u32.wrapping_sub((hi > -lo) as u32);
    f32::from_bits((hi.to_bits() & take_hi) | (lo.to_bits() & !take_hi))
}

/// [`min_max`] for a whole block, vectorized. The sequential scan is only needed when the
/// minimum or the maximum is zero: it keeps the first zero it meets, whose sign ends up in the
/// stored values.
#[inline(always)]
fn min_max_block(x: &[f32; QK]) -> (f32, f32) {
    let lo = fold_lanes(x, min, |v| v);
    let hi = fold_lanes(x, max, |v| v);
    if lo == 0.0 || hi == 0.0 {
        return min_max(x);
    }
    (lo, hi)
}

#[inline(always)]
fn block(x: &[f32]) -> &[f32; QK] {
    x.try_into().expect("a block of 32 values")
}

pub(super) fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let d = abs_max(x) / 127.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    // The scaled values are within [-127, 127] (or all ±inf/NaN when `id` overflows).
    let q: [u8; QK] = std::array::from_fn(|j| round_away(x[j] * id) as u8);
    out[2..2 + QK].copy_from_slice(&q);
}

pub(super) fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let d = signed_absmax_block(x) / -8.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    // x * id + 8.5 lies in [0, 17): truncation is ggml's `(int8_t)` cast there, and the bytes
    // are at most 16, so an unsigned minimum is its signed `MIN(15, ·)`. Element j and j + 16
    // share a byte.
    let o: &mut [u8; QK / 2] = (&mut out[2..2 + QK / 2]).try_into().expect("16 bytes");
    for j in 0..QK / 2 {
        let lo = trunc_byte(x[j] * id + 8.5).min(15);
        let hi = trunc_byte(x[j + QK / 2] * id + 8.5).min(15);
        o[j] = lo | (hi << 4);
    }
}

pub(super) fn quantize_q4_1(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let (min, max) = min_max_block(x);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    write_f16(out, 2, min);
    let q: [u8; QK] = std::array::from_fn(|j| trunc_byte((x[j] - min) * id + 0.5).min(15));
    pack_nibbles(&q, &mut out[4..4 + QK / 2]);
}

pub(super) fn quantize_q5_0(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let d = signed_absmax_block(x) / -16.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    let q: [u8; QK] = std::array::from_fn(|j| trunc_byte(x[j] * id + 16.5).min(31));
    out[2..6].copy_from_slice(&high_bits(&q).to_le_bytes());
    pack_nibbles(&q, &mut out[6..6 + QK / 2]);
}

pub(super) fn quantize_q5_1(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let (min, max) = min_max_block(x);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    write_f16(out, 2, min);
    // No clamp in the reference: the value cannot exceed 31.5 here.
    let q: [u8; QK] = std::array::from_fn(|j| trunc_byte((x[j] - min) * id + 0.5));
    out[4..8].copy_from_slice(&high_bits(&q).to_le_bytes());
    pack_nibbles(&q, &mut out[8..8 + QK / 2]);
}

/// `o[j]` = low nibble of `q[j]` | low nibble of `q[j + 16]` << 4.
#[inline(always)]
fn pack_nibbles(q: &[u8; QK], o: &mut [u8]) {
    let o: &mut [u8; QK / 2] = o.try_into().expect("16 bytes of nibbles");
    for j in 0..QK / 2 {
        o[j] = (q[j] & 0x0f) | ((q[j + QK / 2] & 0x0f) << 4);
    }
}

/// Bit `j` = bit 4 of `q[j]` (the fifth bit of the 5-bit types).
#[inline(always)]
fn high_bits(q: &[u8; QK]) -> u32 {
    (0..QK).fold(0u32, |h, j| h | (((q[j] >> 4) & 1) as u32) << j)
}

pub(super) fn dequantize_q8_0(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    for (o, &q) in y.iter_mut().zip(&b[2..2 + QK]) {
        *o = (q as i8) as f32 * d;
    }
}

pub(super) fn dequantize_q4_0(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    for j in 0..QK / 2 {
        let q = b[2 + j];
        y[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
        y[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

pub(super) fn dequantize_q4_1(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let m = read_f16(b, 2);
    for j in 0..QK / 2 {
        let q = b[4 + j];
        y[j] = (q & 0x0f) as f32 * d + m;
        y[j + QK / 2] = (q >> 4) as f32 * d + m;
    }
}

pub(super) fn dequantize_q5_0(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for j in 0..QK / 2 {
        let q = b[6 + j];
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + QK / 2)) & 1) << 4;
        y[j] = (((q & 0x0f) as u32 | h0) as i32 - 16) as f32 * d;
        y[j + QK / 2] = (((q >> 4) as u32 | h1) as i32 - 16) as f32 * d;
    }
}

pub(super) fn dequantize_q5_1(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let m = read_f16(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for j in 0..QK / 2 {
        let q = b[8 + j];
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + QK / 2)) & 1) << 4;
        y[j] = ((q & 0x0f) as u32 | h0) as f32 * d + m;
        y[j + QK / 2] = ((q >> 4) as u32 | h1) as f32 * d + m;
    }
}

#[cfg(test)]
mod tests {
    use super::{round_away, trunc_byte};

    #[test]
    fn non_finite_give_low_byte_zero() {
        for v in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN] {
            assert_eq!(round_away(v) as u8, 0, "{v}");
            assert_eq!(trunc_byte(v), 0, "{v}");
        }
    }

    #[test]
    fn trunc_byte_truncates() {
        for i in 0..2_000_000u32 {
            let y = i as f32 / 65_536.0;
            assert_eq!(trunc_byte(y), y as u8, "{y}");
        }
        for y in [
            0.0f32, 0.5, 0.99999994, 1.0, 8.5, 15.999999, 16.0, 16.5, 16.999998,
        ] {
            assert_eq!(trunc_byte(y), y as u8, "{y}");
        }
    }

    #[test]
    fn round_away_matches_roundf() {
        let mut vals = vec![
            0.5f32,
            -0.5,
            1.5,
            -1.5,
            2.5,
            126.5,
            -127.5,
            0.49999997,
            -0.49999997,
        ];
        for i in 0..200_000u32 {
            vals.push(f32::from_bits(0x3000_0000 + i * 5743) % 128.0);
            vals.push(-(i as f32) / 1024.0);
        }
        for v in vals {
            assert_eq!(round_away(v), v.round() as i32, "{v}");
        }
    }
}
