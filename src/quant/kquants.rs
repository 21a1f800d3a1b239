//! K-quants: super-blocks of 256 values with 6- or 4-bit sub-block scales
//! (ggml `quantize_row_q{2,3,4,5,6}_K_ref`, `make_qx_quants`, `make_q3_quants`,
//! `make_qkx2_quants`).
//!
//! The f32 expressions below keep the reference's evaluation order (left to right, no fused
//! multiply-add, int → f32 conversions where C converts), because any reordering changes the
//! last bit of an intermediate and, now and then, a stored value.
//!
//! Layouts (little-endian, in field order):
//! Q2_K `scales[16] | qs[64] | d f16 | dmin f16` (84 bytes),
//! Q3_K `hmask[32] | qs[64] | scales[12] | d f16` (110),
//! Q4_K `d f16 | dmin f16 | scales[12] | qs[128]` (144),
//! Q5_K `d f16 | dmin f16 | scales[12] | qh[32] | qs[128]` (176),
//! Q6_K `ql[128] | qh[64] | scales i8[16] | d f16` (210).

use super::lanes::{self, LANES};
use super::{read_f16, write_f16, QK_K};

/// Values whose group maximum is below this are treated as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round to nearest, ties to even, through the 1.5·2^23 trick. Exact for
/// |x| ≤ 4194303 (the reference asserts that); reproduced bit for bit outside that range too.
#[inline(always)]
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `make_qx_quants` with `rmse_type == 1` and no importance weights (weights `x²`), as used by
/// Q6_K. Writes `L[i] ∈ [0, 2·nmax)` and returns the scale. The quantizers run
/// [`lanes::qx_rmse1`], eight sub-blocks at a time; this one-sub-block form is its reference.
#[cfg(test)]
fn make_qx_quants_rmse1(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (o, &v) in l_out.iter_mut().zip(x) {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *o = (l + nmax) as i8;
        let w = v * v;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1f32 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = v * v;
            let lf = l as f32;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (o, &v) in l_out.iter_mut().zip(x) {
                let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
                *o = (nmax + l) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_q3_quants` with `do_rmse == true` (Q3_K). Writes `L[i] ∈ [0, 2·nmax)`.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (o, &v) in l_out.iter_mut().zip(x) {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *o = l as i8;
        let w = v * v;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (i, &v) in x.iter().enumerate() {
            let w = v * v;
            let li = l_out[i] as f32;
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l_out[i] as i32 {
                    let nl = new_l as f32;
                    slx += w * v * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l_out[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for o in l_out.iter_mut() {
        *o += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// `make_qkx2_quants`: asymmetric (scale, min) search used by Q2_K, Q4_K and Q5_K.
/// Writes `L[i] ∈ [0, nmax]`; returns `(scale, the_min)` with `the_min ≥ 0` meaning
/// `x ≈ scale·L − the_min`. The quantizers run [`lanes::qkx2`], eight sub-blocks at a time;
/// this one-sub-block form is its reference.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    l_aux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        let diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            l_aux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * l_aux[i] as f32 + this_min - x[i];
                let diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&l_aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Unpacks the 6-bit scale and min of sub-block `j` (Q4_K/Q5_K `get_scale_min_k4`).
#[inline(always)]
fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q2_K/Q3_K packing of 2-bit values: for each half of 128, byte `l` of the 32-byte group
/// holds elements `l`, `l+32`, `l+64`, `l+96` at bit offsets 0, 2, 4, 6.
#[inline]
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

#[inline(always)]
fn quantize_q2_k_portable(x: &[f32], out: &mut [u8]) {
    // scales[0..16] | qs[16..80] | d[80..82] | dmin[82..84]
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut mins = [0f32; QK_K / 16];
    let mut scales = [0f32; QK_K / 16];
    // Sixteen sub-blocks of 16: two groups of eight, one sub-block per lane (see `lanes`).
    for half in 0..2 {
        let base = 128 * half;
        let mut xt = [[0f32; LANES]; 16];
        let mut wt = [[0f32; LANES]; 16];
        for j in 0..LANES {
            for i in 0..16 {
                xt[i][j] = x[base + 16 * j + i];
                wt[i][j] = xt[i][j].abs();
            }
        }
        let mut lt = [[0u8; LANES]; 16];
        let (s, m) = lanes::qkx2(3, &xt, &wt, &mut lt, -0.5, 0.1, 15, true);
        for j in 0..LANES {
            scales[8 * half + j] = s[j];
            mins[8 * half + j] = m[j];
            for i in 0..16 {
                l[base + 16 * j + i] = lt[i][j];
            }
        }
    }
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 16 {
        let (s, m) = (scales[j], mins[j]);
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let (sc_bytes, rest) = out.split_at_mut(16);
    let (qs, dd) = rest.split_at_mut(64);
    let d = if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for j in 0..QK_K / 16 {
            sc_bytes[j] = nearest_int(iscale * scales[j]) as u8;
        }
        write_f16(dd, 0, max_scale / Q4SCALE)
    } else {
        sc_bytes.fill(0);
        write_f16(dd, 0, 0.0)
    };
    let dmin = if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for j in 0..QK_K / 16 {
            let li = nearest_int(iscale * mins[j]);
            sc_bytes[j] |= (li << 4) as u8;
        }
        write_f16(dd, 2, max_min / Q4SCALE)
    } else {
        write_f16(dd, 2, 0.0)
    };
    for j in 0..QK_K / 16 {
        let dj = d * (sc_bytes[j] & 0x0f) as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * (sc_bytes[j] >> 4) as f32;
        for ii in 0..16 {
            let li = nearest_int((x[16 * j + ii] + dm) / dj).clamp(0, 3);
            l[16 * j + ii] = li as u8;
        }
    }
    pack_2bit(&l, qs);
}

/// The K-quant block functions with the most work (Q2_K, Q4_K, Q5_K, Q6_K), dispatched to a copy
/// compiled for AVX2 when the processor has it. Both copies are the same Rust code (the
/// portable body is inlined into each); AVX2 only widens the vectors of the lane loops of
/// [`lanes`] from four floats to eight. Float operations are the same IEEE operations in the
/// same order either way (Rust never fuses a multiply and an add on its own), so the bytes are
/// identical: `tests::avx2_and_portable_blocks_are_identical` checks it.
macro_rules! dispatched {
    ($($name:ident => $portable:ident, $avx2:ident;)*) => {
        $(
            pub(super) fn $name(x: &[f32], out: &mut [u8]) {
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: `$avx2` only requires AVX2, which the processor was just found to
                    // support; its body is safe Rust.
                    return unsafe { avx2::$avx2(x, out) };
                }
                $portable(x, out)
            }
        )*
        /// The same block functions compiled with AVX2 enabled.
        #[cfg(target_arch = "x86_64")]
        mod avx2 {
            $(
                #[target_feature(enable = "avx2")]
                pub(super) unsafe fn $avx2(x: &[f32], out: &mut [u8]) {
                    super::$portable(x, out)
                }
            )*
        }
    };
}

dispatched! {
    quantize_q2_k => quantize_q2_k_portable, q2_k;
    quantize_q4_k => quantize_q4_k_portable, q4_k;
    quantize_q5_k => quantize_q5_k_portable, q5_k;
    quantize_q6_k => quantize_q6_k_portable, q6_k;
}

pub(super) fn quantize_q3_k(x: &[f32], out: &mut [u8]) {
    // hmask[0..32] | qs[32..96] | scales[96..108] | d[108..110]
    let mut l8 = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for j in 0..QK_K / 16 {
        scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l8[16 * j..16 * j + 16]);
        let s = scales[j].abs();
        if s > amax {
            amax = s;
            max_scale = scales[j];
        }
    }
    let (hmask, rest) = out.split_at_mut(32);
    let (qs, rest) = rest.split_at_mut(64);
    let (sc, dbytes) = rest.split_at_mut(12);
    sc.fill(0);
    let d_all = if max_scale != 0.0 {
        let iscale = -32.0f32 / max_scale;
        for j in 0..QK_K / 16 {
            // The reference narrows to int8 before clamping.
            let mut li = (nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32;
            if j < 8 {
                sc[j] = (li & 0x0f) as u8;
            } else {
                sc[j - 8] |= ((li & 0x0f) << 4) as u8;
            }
            li >>= 4;
            sc[j % 4 + 8] |= (li as u8) << (2 * (j / 4));
        }
        write_f16(dbytes, 0, 1.0 / iscale)
    } else {
        write_f16(dbytes, 0, 0.0)
    };
    for j in 0..QK_K / 16 {
        let low = if j < 8 { sc[j] & 0x0f } else { sc[j - 8] >> 4 };
        let s = (low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8 - 32;
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let li = nearest_int(x[16 * j + ii] / d).clamp(-4, 3);
            l8[16 * j + ii] = (li + 4) as i8;
        }
    }
    hmask.fill(0);
    let mut l = [0u8; QK_K];
    let mut m = 0usize;
    let mut hm = 1u8;
    for j in 0..QK_K {
        let mut v = l8[j] as u8;
        if v > 3 {
            hmask[m] |= hm;
            v -= 4;
        }
        l[j] = v;
        m += 1;
        if m == QK_K / 8 {
            m = 0;
            hm <<= 1;
        }
    }
    pack_2bit(&l, qs);
}

/// Shared part of Q4_K and Q5_K: sub-block (scale, min) search and the packed 6-bit scales.
/// Returns the final `L` values (0..=nmax) per element.
#[inline(always)]
fn quantize_k_scales(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    head: &mut [u8], // d f16 | dmin f16 | scales[12]
) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    // The eight sub-blocks of 32 searched together, sub-block j in lane j (see `lanes`).
    let mut xt = [[0f32; LANES]; 32];
    for (j, sub) in x.chunks_exact(32).enumerate() {
        for (i, &v) in sub.iter().enumerate() {
            xt[i][j] = v;
        }
    }
    let mut sum_x2 = [0f32; LANES];
    for row in &xt {
        for k in 0..LANES {
            sum_x2[k] += row[k] * row[k];
        }
    }
    let mut weights = [[0f32; LANES]; 32];
    for (w, row) in weights.iter_mut().zip(&xt) {
        for k in 0..LANES {
            w[k] = (sum_x2[k] / 32.0).sqrt() + row[k].abs();
        }
    }
    let mut lt = [[0u8; LANES]; 32];
    let (scales, mins) = lanes::qkx2(nmax, &xt, &weights, &mut lt, rmin, 0.1, nstep, false);
    for (i, row) in lt.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            l[32 * j + i] = v;
        }
    }
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        let (s, m) = (scales[j], mins[j]);
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let sc = &mut head[4..16];
    for j in 0..QK_K / 32 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    let d = write_f16(head, 0, max_scale / 63.0);
    let dmin = write_f16(head, 2, max_min / 63.0);
    for j in 0..QK_K / 32 {
        let (s, m) = get_scale_min_k4(j, &head[4..16]);
        let dj = d * s as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * m as f32;
        for ii in 0..32 {
            let li = nearest_int((x[32 * j + ii] + dm) / dj).clamp(0, nmax);
            l[32 * j + ii] = li as u8;
        }
    }
    l
}

#[inline(always)]
fn quantize_q4_k_portable(x: &[f32], out: &mut [u8]) {
    let (head, qs) = out.split_at_mut(16);
    let l = quantize_k_scales(x, 15, -1.0, 20, head);
    for (c, q) in qs.chunks_exact_mut(32).enumerate() {
        let j = 64 * c;
        for i in 0..32 {
            q[i] = l[j + i] | (l[j + i + 32] << 4);
        }
    }
}

#[inline(always)]
fn quantize_q5_k_portable(x: &[f32], out: &mut [u8]) {
    let (head, rest) = out.split_at_mut(16);
    let (qh, ql) = rest.split_at_mut(32);
    let l = quantize_k_scales(x, 31, -0.5, 15, head);
    qh.fill(0);
    let mut m1 = 1u8;
    let mut m2 = 2u8;
    for (c, q) in ql.chunks_exact_mut(32).enumerate() {
        let n = 64 * c;
        for j in 0..32 {
            let mut l1 = l[n + j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = l[n + j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            q[j] = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
    }
}

#[inline(always)]
fn quantize_q6_k_portable(x: &[f32], out: &mut [u8]) {
    // ql[0..128] | qh[128..192] | scales[192..208] | d[208..210]
    let mut l8 = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    // Sixteen sub-blocks of 16: two groups of eight, one sub-block per lane (see `lanes`).
    for half in 0..2 {
        let base = 128 * half;
        let mut xt = [[0f32; LANES]; 16];
        for j in 0..LANES {
            for i in 0..16 {
                xt[i][j] = x[base + 16 * j + i];
            }
        }
        let mut lt = [[0i8; LANES]; 16];
        let s = lanes::qx_rmse1(32, &xt, &mut lt);
        for j in 0..LANES {
            scales[8 * half + j] = s[j];
            for i in 0..16 {
                l8[base + 16 * j + i] = lt[i][j];
            }
        }
    }
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for &s in &scales {
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        out.fill(0);
        return;
    }
    let (ql, rest) = out.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    let (sc, dbytes) = rest.split_at_mut(16);
    let iscale = -128.0f32 / max_scale;
    let d_all = write_f16(dbytes, 0, 1.0 / iscale);
    for ib in 0..QK_K / 16 {
        sc[ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
    }
    for j in 0..QK_K / 16 {
        let d = d_all * (sc[j] as i8) as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let li = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
            l8[16 * j + ii] = (li + 32) as i8;
        }
    }
    for h in 0..2 {
        let j = 128 * h;
        let ql = &mut ql[64 * h..64 * h + 64];
        let qh = &mut qh[32 * h..32 * h + 32];
        for i in 0..32 {
            let l0 = l8[j + i] as u8;
            let l1 = l8[j + i + 32] as u8;
            let l2 = l8[j + i + 64] as u8;
            let l3 = l8[j + i + 96] as u8;
            ql[i] = (l0 & 0x0f) | ((l2 & 0x0f) << 4);
            ql[i + 32] = (l1 & 0x0f) | ((l3 & 0x0f) << 4);
            qh[i] = (l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6);
        }
    }
}

pub(super) fn dequantize_q2_k(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 80);
    let min = read_f16(b, 82);
    let scales = &b[0..16];
    let mut is = 0;
    let mut k = 0;
    for n in 0..2 {
        let q = &b[16 + 32 * n..16 + 32 * n + 32];
        for shift in (0..8).step_by(2) {
            for half in 0..2 {
                let s = scales[is];
                is += 1;
                let dl = d * (s & 0x0f) as f32;
                let ml = min * (s >> 4) as f32;
                for &qv in &q[16 * half..16 * half + 16] {
                    y[k] = dl * ((qv >> shift) & 3) as f32 - ml;
                    k += 1;
                }
            }
        }
    }
}

pub(super) fn dequantize_q3_k(b: &[u8], y: &mut [f32]) {
    let d_all = read_f16(b, 108);
    let hm = &b[0..32];
    let sc = &b[96..108];
    let mut k = 0;
    let mut m = 1u8;
    let mut is = 0;
    for n in 0..2 {
        let q = &b[32 + 32 * n..32 + 32 * n + 32];
        for shift in (0..8).step_by(2) {
            for half in 0..2 {
                let j = is;
                is += 1;
                let low = if j < 8 { sc[j] & 0x0f } else { sc[j - 8] >> 4 };
                let s = (low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i32 - 32;
                let dl = d_all * s as f32;
                for l in 16 * half..16 * half + 16 {
                    let lo = ((q[l] >> shift) & 3) as i32;
                    let hi = if hm[l] & m != 0 { 0 } else { 4 };
                    y[k] = dl * (lo - hi) as f32;
                    k += 1;
                }
            }
            m <<= 1;
        }
    }
}

pub(super) fn dequantize_q4_k(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let min = read_f16(b, 2);
    let sc = &b[4..16];
    for c in 0..4 {
        let q = &b[16 + 32 * c..16 + 32 * c + 32];
        let (s1, m1) = get_scale_min_k4(2 * c, sc);
        let (s2, m2) = get_scale_min_k4(2 * c + 1, sc);
        let (d1, m1) = (d * s1 as f32, min * m1 as f32);
        let (d2, m2) = (d * s2 as f32, min * m2 as f32);
        for l in 0..32 {
            y[64 * c + l] = d1 * (q[l] & 0x0f) as f32 - m1;
            y[64 * c + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

pub(super) fn dequantize_q5_k(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let min = read_f16(b, 2);
    let sc = &b[4..16];
    let qh = &b[16..48];
    let mut u1 = 1u8;
    let mut u2 = 2u8;
    for c in 0..4 {
        let ql = &b[48 + 32 * c..48 + 32 * c + 32];
        let (s1, m1) = get_scale_min_k4(2 * c, sc);
        let (s2, m2) = get_scale_min_k4(2 * c + 1, sc);
        let (d1, m1) = (d * s1 as f32, min * m1 as f32);
        let (d2, m2) = (d * s2 as f32, min * m2 as f32);
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[64 * c + l] = d1 * ((ql[l] & 0x0f) + h1) as f32 - m1;
            y[64 * c + 32 + l] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
        u1 <<= 2;
        u2 <<= 2;
    }
}

pub(super) fn dequantize_q6_k(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 208);
    for h in 0..2 {
        let ql = &b[64 * h..64 * h + 64];
        let qh = &b[128 + 32 * h..128 + 32 * h + 32];
        let sc = &b[192 + 8 * h..192 + 8 * h + 8];
        let yo = &mut y[128 * h..128 * h + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            yo[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            yo[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            yo[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            yo[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sub-blocks of every kind the searches branch on: Gaussian-like, all zero, constant,
    /// positive only, one outlier, tiny values.
    fn sub_blocks(n: usize) -> Vec<Vec<f32>> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut out = Vec::new();
        for kind in 0..6 {
            for _ in 0..40 {
                let v: Vec<f32> = (0..n)
                    .map(|i| match kind {
                        0 => next() * 0.04,
                        1 => 0.0,
                        2 => 0.25,
                        3 => next().abs() + 0.01,
                        4 => {
                            if i == 3 {
                                9.0
                            } else {
                                next() * 1e-3
                            }
                        }
                        _ => next() * 1e-20,
                    })
                    .collect();
                out.push(v);
            }
        }
        out
    }

    fn transpose<const N: usize>(group: &[Vec<f32>]) -> [[f32; LANES]; N] {
        let mut t = [[0f32; LANES]; N];
        for (k, sub) in group.iter().enumerate() {
            for i in 0..N {
                t[i][k] = sub[i];
            }
        }
        t
    }

    fn check_qkx2<const N: usize>(nmax: i32, rmin: f32, nstep: i32, use_mad: bool) {
        for group in sub_blocks(N).chunks_exact(LANES) {
            let xt = transpose::<N>(group);
            let mut wt = [[0f32; LANES]; N];
            for i in 0..N {
                for k in 0..LANES {
                    wt[i][k] = xt[i][k].abs() + 0.5;
                }
            }
            let mut lt = [[0u8; LANES]; N];
            let (s8, m8) = lanes::qkx2(nmax, &xt, &wt, &mut lt, rmin, 0.1, nstep, use_mad);
            for (k, sub) in group.iter().enumerate() {
                let w: Vec<f32> = sub.iter().map(|v| v.abs() + 0.5).collect();
                let (mut l, mut aux) = (vec![0u8; N], vec![0u8; N]);
                let (s, m) =
                    make_qkx2_quants(nmax, sub, &w, &mut l, &mut aux, rmin, 0.1, nstep, use_mad);
                assert_eq!(
                    (s.to_bits(), m.to_bits()),
                    (s8[k].to_bits(), m8[k].to_bits())
                );
                assert!((0..N).all(|i| l[i] == lt[i][k]));
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_and_portable_blocks_are_identical() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return; // no AVX2 on this processor: only the portable path runs
        }
        let values: Vec<f32> = sub_blocks(32).concat();
        type Pair = (fn(&[f32], &mut [u8]), unsafe fn(&[f32], &mut [u8]), usize);
        let pairs: [Pair; 4] = [
            (quantize_q2_k_portable, avx2::q2_k, 84),
            (quantize_q4_k_portable, avx2::q4_k, 144),
            (quantize_q5_k_portable, avx2::q5_k, 176),
            (quantize_q6_k_portable, avx2::q6_k, 210),
        ];
        for (portable, simd, ts) in pairs {
            for block in values.chunks_exact(QK_K) {
                let (mut a, mut b) = (vec![0u8; ts], vec![0u8; ts]);
                portable(block, &mut a);
                // SAFETY: AVX2 was detected above.
                unsafe { simd(block, &mut b) };
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn lane_searches_equal_the_one_sub_block_searches_bit_for_bit() {
        check_qkx2::<32>(15, -1.0, 20, false); // Q4_K
        check_qkx2::<32>(31, -0.5, 15, false); // Q5_K
        check_qkx2::<16>(3, -0.5, 15, true); // Q2_K
        check_qkx2::<16>(3, -0.5, 0, true); // no search steps
        for group in sub_blocks(16).chunks_exact(LANES) {
            let xt = transpose::<16>(group);
            let mut lt = [[0i8; LANES]; 16];
            let s8 = lanes::qx_rmse1(32, &xt, &mut lt);
            for (k, sub) in group.iter().enumerate() {
                let mut l = vec![0i8; 16];
                let s = make_qx_quants_rmse1(32, sub, &mut l);
                assert_eq!(s.to_bits(), s8[k].to_bits());
                assert!((0..16).all(|i| l[i] == lt[i][k]));
            }
        }
    }
}
