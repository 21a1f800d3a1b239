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

/// `roundf` (nearest, ties away from zero) for |v| < 2^23, without a libm call or a branch:
/// the truncation and the remaining fraction are both exact in that range.
#[inline(always)]
fn round_away(v: f32) -> i32 {
    let t = v as i32;
    let frac = v - t as f32;
    t + (frac >= 0.5) as i32 - (frac <= -0.5) as i32
}

/// Largest magnitude of a block: eight independent lanes (auto-vectorized), then the lanes.
/// The maximum of finite non-negative values does not depend on the order it is taken in, so
/// this equals ggml's sequential `MAX(amax, fabsf(v))`.
#[inline(always)]
fn abs_max(x: &[f32; QK]) -> f32 {
    let mut m = [0.0f32; 8];
    for c in x.chunks_exact(8) {
        for l in 0..8 {
            let a = c[l].abs();
            m[l] = if m[l] > a { m[l] } else { a };
        }
    }
    m.iter().fold(0.0f32, |a, &b| if a > b { a } else { b })
}

/// [`signed_absmax`] for a whole block without a data-dependent branch per element: the value
/// of largest magnitude is `±amax`, with the sign of its first occurrence; all zeros give +0.
#[inline(always)]
fn signed_absmax_block(x: &[f32; QK]) -> f32 {
    let amax = abs_max(x);
    let mut at = 0u32;
    let mut neg = 0u32;
    for (j, &v) in x.iter().enumerate() {
        at |= ((v.abs() == amax) as u32) << j;
        neg |= (v.to_bits() >> 31) << j;
    }
    if amax == 0.0 {
        return 0.0;
    }
    let first = at.trailing_zeros();
    if (neg >> first) & 1 == 1 {
        -amax
    } else {
        amax
    }
}

#[inline(always)]
fn block(x: &[f32]) -> &[f32; QK] {
    x.try_into().expect("a block of 32 values")
}

pub(super) fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let amax = abs_max(x);
    let d = amax / 127.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    let o: &mut [u8; QK] = (&mut out[2..2 + QK]).try_into().expect("34-byte block");
    for (o, &v) in o.iter_mut().zip(x) {
        // roundf: ties away from zero; the value is within [-127, 127].
        *o = round_away(v * id) as i8 as u8;
    }
}

pub(super) fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    let x = block(x);
    let max = signed_absmax_block(x);
    let d = max / -8.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    // x * id + 8.5 lies in [0, 17): truncating to i32 is ggml's `(int8_t)` cast there.
    let mut q = [0u8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        *q = ((v * id + 8.5) as i32).min(15) as u8;
    }
    let o: &mut [u8; QK / 2] = (&mut out[2..2 + QK / 2]).try_into().expect("18-byte block");
    for j in 0..QK / 2 {
        o[j] = q[j] | (q[j + QK / 2] << 4);
    }
}

pub(super) fn quantize_q4_1(x: &[f32], out: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    write_f16(out, 2, min);
    for j in 0..QK / 2 {
        let q0 = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
        let q1 = (((x[j + QK / 2] - min) * id + 0.5) as i8).min(15) as u8;
        out[4 + j] = q0 | (q1 << 4);
    }
}

pub(super) fn quantize_q5_0(x: &[f32], out: &mut [u8]) {
    let max = signed_absmax(x);
    let d = max / -16.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let q0 = ((x[j] * id + 16.5) as i8).min(31) as u8;
        let q1 = ((x[j + QK / 2] * id + 16.5) as i8).min(31) as u8;
        out[6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
        qh |= (((q0 & 0x10) >> 4) as u32) << j;
        qh |= (((q1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    out[2..6].copy_from_slice(&qh.to_le_bytes());
}

pub(super) fn quantize_q5_1(x: &[f32], out: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    write_f16(out, 0, d);
    write_f16(out, 2, min);
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        // No clamp in the reference: the value cannot exceed 31.5 here.
        let q0 = ((x[j] - min) * id + 0.5) as u8;
        let q1 = ((x[j + QK / 2] - min) * id + 0.5) as u8;
        out[8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
        qh |= (((q0 & 0x10) >> 4) as u32) << j;
        qh |= (((q1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    out[4..8].copy_from_slice(&qh.to_le_bytes());
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
    use super::round_away;

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
