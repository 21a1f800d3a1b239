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

use super::lanes::{self, Lanes, Two};
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

/// Super-blocks searched together.
const GROUP: usize = 4;
/// Sub-blocks in a group, at most (sixteen per super-block).
const GROUP_SUBS: usize = 16 * GROUP;

/// Results of the sub-block searches of a group of super-blocks, sub-block `j` of the group at
/// index `j`.
struct Found {
    scale: [f32; GROUP_SUBS],
    /// `-min` for `make_qkx2_quants`; unused for `make_qx_quants`.
    neg_min: [f32; GROUP_SUBS],
    /// How the best candidate's levels were rounded (see [`lanes::level_qkx2`]).
    l_iscale: [f32; GROUP_SUBS],
    l_min: [f32; GROUP_SUBS],
    /// Bit `j`: sub-block `j` is flat (`qkx2`) or all zero (`qx`), its levels 0.
    zero: u64,
}

impl Found {
    fn new() -> Self {
        Found {
            scale: [0.0; GROUP_SUBS],
            neg_min: [0.0; GROUP_SUBS],
            l_iscale: [0.0; GROUP_SUBS],
            l_min: [0.0; GROUP_SUBS],
            zero: 0,
        }
    }

    fn is_zero(&self, j: usize) -> bool {
        self.zero >> j & 1 != 0
    }
}

/// The `S::LANES` sub-blocks of `N` values at the start of `x`, one per lane: lane `k` of
/// vector `i` is `x[N·k + i]`.
#[inline(always)]
fn transpose<S: Lanes, const N: usize>(s: S, x: &[f32]) -> [S::F; N] {
    let x = &x[..N * S::LANES];
    let mut t = [[0f32; 32]; N];
    for k in 0..S::LANES {
        for i in 0..N {
            t[i][k] = x[N * k + i];
        }
    }
    let mut v = [s.splat(0.0); N];
    for i in 0..N {
        v[i] = s.load(&t[i]);
    }
    v
}

/// The weights of `make_qkx2_quants`.
#[derive(Clone, Copy)]
enum Weights {
    /// `|x|` (Q2_K).
    Abs,
    /// `sqrt(Σx²/N) + |x|` (Q4_K, Q5_K).
    RmsPlusAbs,
}

/// Runs `make_qkx2_quants` on the `S::LANES` sub-blocks of `N` values at the start of `x`
/// with weights `weights(xt)` and records the results at `found[at..]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn search_qkx2<S: Lanes, const N: usize>(
    s: S,
    x: &[f32],
    weights: Weights,
    nmax: i32,
    rmin: f32,
    nstep: i32,
    use_mad: bool,
    found: &mut Found,
    at: usize,
) {
    let xt = transpose::<S, N>(s, x);
    let mut w = [s.splat(0.0); N];
    for i in 0..N {
        w[i] = s.abs(xt[i]);
    }
    if let Weights::RmsPlusAbs = weights {
        let mut sum_x2 = s.splat(0.0);
        for &v in &xt {
            sum_x2 = s.add(sum_x2, s.mul(v, v));
        }
        let av_x = s.sqrt(s.div(sum_x2, s.splat(N as f32)));
        for wi in &mut w {
            *wi = s.add(av_x, *wi);
        }
    }
    let r = lanes::qkx2(s, nmax, &xt, &w, rmin, 0.1, nstep, use_mad);
    s.store(r.scale, &mut found.scale[at..]);
    s.store(r.neg_min, &mut found.neg_min[at..]);
    s.store(r.l_iscale, &mut found.l_iscale[at..]);
    s.store(r.l_min, &mut found.l_min[at..]);
    found.zero |= u64::from(s.bits(r.flat)) << at;
}

/// A K-quant type whose sub-blocks are searched in lanes.
trait KQuant {
    /// Bytes per super-block.
    const TS: usize;
    /// Sub-blocks per super-block.
    const SUBS: usize;
    /// Fills `found` for the sub-blocks of the [`GROUP`] super-blocks `xg`.
    fn search<S: Lanes>(s: S, xg: &[f32], found: &mut Found);
    /// Encodes the super-block `x` from its values and the results of its sub-blocks
    /// (`found[first..first + SUBS]`).
    fn finish(x: &[f32], found: &Found, first: usize, out: &mut [u8]);
}

/// Quantizes the super-blocks of `x` into `out` [`GROUP`] at a time: [`KQuant::search`] on
/// the group, then [`KQuant::finish`] on each. The last, incomplete group is completed with
/// copies of its first super-block, whose results are not used.
#[inline(always)]
fn in_groups<K: KQuant, S: Lanes>(s: S, x: &[f32], out: &mut [u8]) {
    let mut xs = x.chunks_exact(GROUP * QK_K);
    let mut outs = out.chunks_exact_mut(GROUP * K::TS);
    for (xg, og) in (&mut xs).zip(&mut outs) {
        let mut found = Found::new();
        K::search(s, xg, &mut found);
        for (b, (xb, ob)) in xg
            .chunks_exact(QK_K)
            .zip(og.chunks_exact_mut(K::TS))
            .enumerate()
        {
            K::finish(xb, &found, b * K::SUBS, ob);
        }
    }
    let rest = xs.remainder();
    if !rest.is_empty() {
        let mut group = [0f32; GROUP * QK_K];
        for (i, g) in group.chunks_exact_mut(QK_K).enumerate() {
            g.copy_from_slice(rest.chunks_exact(QK_K).nth(i).unwrap_or(&rest[..QK_K]));
        }
        let mut found = Found::new();
        K::search(s, &group, &mut found);
        let outs = outs.into_remainder().chunks_exact_mut(K::TS);
        for (b, (xb, ob)) in rest.chunks_exact(QK_K).zip(outs).enumerate() {
            K::finish(xb, &found, b * K::SUBS, ob);
        }
    }
}

struct Q2K;

impl KQuant for Q2K {
    const TS: usize = 84;
    const SUBS: usize = 16;
    #[inline(always)]
    fn search<S: Lanes>(s: S, xg: &[f32], found: &mut Found) {
        let mut at = 0;
        while at < GROUP * 16 {
            let x = &xg[16 * at..];
            search_qkx2::<S, 16>(s, x, Weights::Abs, 3, -0.5, 15, true, found, at);
            at += S::LANES;
        }
    }
    #[inline(always)]
    fn finish(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
        finish_q2_k(x, found, first, out)
    }
}

#[inline(always)]
fn quantize_q2_k_with<S: Lanes>(s: S, x: &[f32], out: &mut [u8]) {
    in_groups::<Q2K, S>(s, x, out);
}

#[inline(always)]
fn finish_q2_k(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
    // scales[0..16] | qs[16..80] | d[80..82] | dmin[82..84]
    const Q4SCALE: f32 = 15.0;
    let scales = &found.scale[first..first + 16];
    let mins = &found.neg_min[first..first + 16];
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
    let mut l = [0u8; QK_K];
    for j in 0..QK_K / 16 {
        let sub = &x[16 * j..16 * j + 16];
        let lj = &mut l[16 * j..16 * j + 16];
        let dj = d * (sc_bytes[j] & 0x0f) as f32;
        if dj == 0.0 {
            // The search's levels stay.
            let f = first + j;
            let (is, m, z) = (found.l_iscale[f], found.l_min[f], found.is_zero(f));
            for (o, &v) in lj.iter_mut().zip(sub) {
                *o = lanes::level_qkx2(3, is, m, z, v);
            }
            continue;
        }
        let dm = dmin * (sc_bytes[j] >> 4) as f32;
        for (o, &v) in lj.iter_mut().zip(sub) {
            *o = nearest_int((v + dm) / dj).clamp(0, 3) as u8;
        }
    }
    pack_2bit(&l, qs);
}

/// The K-quant functions with the most work (Q2_K, Q4_K, Q5_K, Q6_K), for any number of whole
/// super-blocks, dispatched to the widest [`Lanes`] the processor has: two AVX-512 vectors
/// (32 lanes) with AVX-512F, two AVX2 vectors (16 lanes) with AVX2, else two portable
/// 8-lane arrays. Two vectors rather than one give the processor two independent chains of
/// additions to overlap (a tenth faster on Zen 5). The searches are the same code over each
/// (see [`lanes`]) and every operation is the same IEEE operation on each lane, so the bytes are
/// identical whichever runs: `tests::simd_and_portable_blocks_are_identical` checks it.
macro_rules! dispatched {
    ($($name:ident => $with:ident, $avx2:ident, $avx512:ident;)*) => {
        $(
            pub(super) fn $name(x: &[f32], out: &mut [u8]) {
                #[cfg(target_arch = "x86_64")]
                {
                    if let Some(s) = lanes::Avx512::new() {
                        // SAFETY: `$avx512` only requires AVX-512F, which the processor has:
                        // `Avx512::new` found it.
                        return unsafe { simd::$avx512(s, x, out) };
                    }
                    if let Some(s) = lanes::Avx2::new() {
                        // SAFETY: `$avx2` only requires AVX2, which the processor has:
                        // `Avx2::new` found it.
                        return unsafe { simd::$avx2(s, x, out) };
                    }
                }
                $with(Two(lanes::Portable), x, out)
            }
        )*
        /// The same functions compiled with AVX2, and with AVX-512F, enabled.
        #[cfg(target_arch = "x86_64")]
        mod simd {
            use super::lanes::{Avx2, Avx512, Two};
            $(
                #[target_feature(enable = "avx2")]
                pub(super) fn $avx2(s: Avx2, x: &[f32], out: &mut [u8]) {
                    super::$with(Two(s), x, out)
                }
                #[target_feature(enable = "avx512f")]
                pub(super) fn $avx512(s: Avx512, x: &[f32], out: &mut [u8]) {
                    super::$with(Two(s), x, out)
                }
            )*
        }
    };
}

dispatched! {
    quantize_q2_k => quantize_q2_k_with, q2_k_avx2, q2_k_avx512;
    quantize_q4_k => quantize_q4_k_with, q4_k_avx2, q4_k_avx512;
    quantize_q5_k => quantize_q5_k_with, q5_k_avx2, q5_k_avx512;
    quantize_q6_k => quantize_q6_k_with, q6_k_avx2, q6_k_avx512;
}

/// Q3_K for any number of whole super-blocks.
pub(super) fn quantize_q3_k(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(110)) {
        quantize_q3_k_block(xb, ob);
    }
}

fn quantize_q3_k_block(x: &[f32], out: &mut [u8]) {
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

/// Shared part of Q4_K and Q5_K: the search over the sub-blocks of 32 of a [`GROUP`] of
/// super-blocks.
#[inline(always)]
fn search_k45<S: Lanes>(s: S, xg: &[f32], nmax: i32, rmin: f32, nstep: i32, found: &mut Found) {
    let mut at = 0;
    while at < GROUP * 8 {
        let x = &xg[32 * at..];
        search_qkx2::<S, 32>(
            s,
            x,
            Weights::RmsPlusAbs,
            nmax,
            rmin,
            nstep,
            false,
            found,
            at,
        );
        at += S::LANES;
    }
}

/// Shared part of Q4_K and Q5_K: the packed 6-bit scales of the super-block `x` from the
/// search results of its sub-blocks (`found[first..first + 8]`). Returns the final `L`
/// values (0..=nmax) per element.
#[inline(always)]
fn finish_k_scales(
    x: &[f32],
    found: &Found,
    first: usize,
    nmax: i32,
    head: &mut [u8], // d f16 | dmin f16 | scales[12]
) -> [u8; QK_K] {
    let scales = &found.scale[first..first + 8];
    let mins = &found.neg_min[first..first + 8];
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
    let mut l = [0u8; QK_K];
    for j in 0..QK_K / 32 {
        let sub = &x[32 * j..32 * j + 32];
        let lj = &mut l[32 * j..32 * j + 32];
        let (s, m) = get_scale_min_k4(j, &head[4..16]);
        let dj = d * s as f32;
        if dj == 0.0 {
            // The search's levels stay.
            let f = first + j;
            let (is, m, z) = (found.l_iscale[f], found.l_min[f], found.is_zero(f));
            for (o, &v) in lj.iter_mut().zip(sub) {
                *o = lanes::level_qkx2(nmax, is, m, z, v);
            }
            continue;
        }
        let dm = dmin * m as f32;
        for (o, &v) in lj.iter_mut().zip(sub) {
            *o = nearest_int((v + dm) / dj).clamp(0, nmax) as u8;
        }
    }
    l
}

struct Q4K;

impl KQuant for Q4K {
    const TS: usize = 144;
    const SUBS: usize = 8;
    #[inline(always)]
    fn search<S: Lanes>(s: S, xg: &[f32], found: &mut Found) {
        search_k45(s, xg, 15, -1.0, 20, found)
    }
    #[inline(always)]
    fn finish(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
        finish_q4_k(x, found, first, out)
    }
}

#[inline(always)]
fn quantize_q4_k_with<S: Lanes>(s: S, x: &[f32], out: &mut [u8]) {
    in_groups::<Q4K, S>(s, x, out);
}

#[inline(always)]
fn finish_q4_k(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
    let (head, qs) = out.split_at_mut(16);
    let l = finish_k_scales(x, found, first, 15, head);
    for (c, q) in qs.chunks_exact_mut(32).enumerate() {
        let j = 64 * c;
        for i in 0..32 {
            q[i] = l[j + i] | (l[j + i + 32] << 4);
        }
    }
}

struct Q5K;

impl KQuant for Q5K {
    const TS: usize = 176;
    const SUBS: usize = 8;
    #[inline(always)]
    fn search<S: Lanes>(s: S, xg: &[f32], found: &mut Found) {
        search_k45(s, xg, 31, -0.5, 15, found)
    }
    #[inline(always)]
    fn finish(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
        finish_q5_k(x, found, first, out)
    }
}

#[inline(always)]
fn quantize_q5_k_with<S: Lanes>(s: S, x: &[f32], out: &mut [u8]) {
    in_groups::<Q5K, S>(s, x, out);
}

#[inline(always)]
fn finish_q5_k(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
    let (head, rest) = out.split_at_mut(16);
    let (qh, ql) = rest.split_at_mut(32);
    let l = finish_k_scales(x, found, first, 31, head);
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

struct Q6K;

impl KQuant for Q6K {
    const TS: usize = 210;
    const SUBS: usize = 16;
    #[inline(always)]
    fn search<S: Lanes>(s: S, xg: &[f32], found: &mut Found) {
        let mut at = 0;
        while at < GROUP * 16 {
            let xt = transpose::<S, 16>(s, &xg[16 * at..]);
            let r = lanes::qx_rmse1(s, 32, &xt);
            s.store(r.scale, &mut found.scale[at..]);
            s.store(r.l_iscale, &mut found.l_iscale[at..]);
            found.zero |= u64::from(s.bits(r.zero)) << at;
            at += S::LANES;
        }
    }
    #[inline(always)]
    fn finish(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
        finish_q6_k(x, found, first, out)
    }
}

#[inline(always)]
fn quantize_q6_k_with<S: Lanes>(s: S, x: &[f32], out: &mut [u8]) {
    in_groups::<Q6K, S>(s, x, out);
}

#[inline(always)]
fn finish_q6_k(x: &[f32], found: &Found, first: usize, out: &mut [u8]) {
    // ql[0..128] | qh[128..192] | scales[192..208] | d[208..210]
    let scales = &found.scale[first..first + 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for &s in scales {
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
    let mut l8 = [0i8; QK_K];
    for j in 0..QK_K / 16 {
        let sub = &x[16 * j..16 * j + 16];
        let lj = &mut l8[16 * j..16 * j + 16];
        let d = d_all * (sc[j] as i8) as f32;
        if d == 0.0 {
            // The search's levels stay.
            let f = first + j;
            let (is, z) = (found.l_iscale[f], found.is_zero(f));
            for (o, &v) in lj.iter_mut().zip(sub) {
                *o = lanes::level_qx(32, is, z, v);
            }
            continue;
        }
        for (o, &v) in lj.iter_mut().zip(sub) {
            *o = (nearest_int(v / d).clamp(-32, 31) + 32) as i8;
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

    /// The sub-blocks of `group` (at most `S::LANES`; missing lanes repeat the first), one per
    /// lane.
    fn to_lanes<S: Lanes, const N: usize>(s: S, group: &[Vec<f32>]) -> [S::F; N] {
        let x: Vec<f32> = (0..S::LANES)
            .flat_map(|k| group.get(k).unwrap_or(&group[0]).iter().copied())
            .collect();
        transpose::<S, N>(s, &x)
    }

    /// The lanes of `v`.
    fn lanes_of<S: Lanes>(s: S, v: S::F) -> Vec<f32> {
        let mut out = vec![0f32; S::LANES];
        s.store(v, &mut out);
        out
    }

    fn check_qkx2<S: Lanes, const N: usize>(s: S, nmax: i32, rmin: f32, nstep: i32, use_mad: bool) {
        for group in sub_blocks(N).chunks(S::LANES) {
            let xt = to_lanes::<S, N>(s, group);
            let mut wt = xt;
            for v in &mut wt {
                *v = s.add(s.abs(*v), s.splat(0.5));
            }
            let r = lanes::qkx2(s, nmax, &xt, &wt, rmin, 0.1, nstep, use_mad);
            let (scale, neg_min) = (lanes_of(s, r.scale), lanes_of(s, r.neg_min));
            let (l_iscale, l_min) = (lanes_of(s, r.l_iscale), lanes_of(s, r.l_min));
            let flat = s.bits(r.flat);
            for (k, sub) in group.iter().enumerate() {
                let w: Vec<f32> = sub.iter().map(|v| v.abs() + 0.5).collect();
                let (mut l, mut aux) = (vec![0u8; N], vec![0u8; N]);
                let (sc, m) =
                    make_qkx2_quants(nmax, sub, &w, &mut l, &mut aux, rmin, 0.1, nstep, use_mad);
                assert_eq!(
                    (sc.to_bits(), m.to_bits()),
                    (scale[k].to_bits(), neg_min[k].to_bits())
                );
                let is_flat = flat >> k & 1 != 0;
                for i in 0..N {
                    let li = lanes::level_qkx2(nmax, l_iscale[k], l_min[k], is_flat, sub[i]);
                    assert_eq!(l[i], li);
                }
            }
        }
    }

    fn check_qx<S: Lanes>(s: S) {
        for group in sub_blocks(16).chunks(S::LANES) {
            let xt = to_lanes::<S, 16>(s, group);
            let r = lanes::qx_rmse1(s, 32, &xt);
            let (scale, l_iscale) = (lanes_of(s, r.scale), lanes_of(s, r.l_iscale));
            let zero = s.bits(r.zero);
            for (k, sub) in group.iter().enumerate() {
                let mut l = vec![0i8; 16];
                let sc = make_qx_quants_rmse1(32, sub, &mut l);
                assert_eq!(sc.to_bits(), scale[k].to_bits());
                let is_zero = zero >> k & 1 != 0;
                for i in 0..16 {
                    assert_eq!(l[i], lanes::level_qx(32, l_iscale[k], is_zero, sub[i]));
                }
            }
        }
    }

    fn check_lanes<S: Lanes>(s: S) {
        check_qkx2::<S, 32>(s, 15, -1.0, 20, false); // Q4_K
        check_qkx2::<S, 32>(s, 31, -0.5, 15, false); // Q5_K
        check_qkx2::<S, 16>(s, 3, -0.5, 15, true); // Q2_K
        check_qkx2::<S, 16>(s, 3, -0.5, 0, true); // no search steps
        check_qx(s); // Q6_K
    }

    #[test]
    fn lane_searches_equal_the_one_sub_block_searches_bit_for_bit() {
        check_lanes(lanes::Portable);
        check_lanes(Two(lanes::Portable));
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(s) = lanes::Avx2::new() {
                // SAFETY: AVX2 was detected (`Avx2::new`); `check_lanes` is safe Rust.
                unsafe { check_lanes_avx2(s) };
            }
            if let Some(s) = lanes::Avx512::new() {
                // SAFETY: AVX-512F was detected (`Avx512::new`).
                unsafe { check_lanes_avx512(s) };
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn check_lanes_avx2(s: lanes::Avx2) {
        check_lanes(s);
        check_lanes(Two(s));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn check_lanes_avx512(s: lanes::Avx512) {
        check_lanes(s);
        check_lanes(Two(s));
    }

    /// Super-blocks mixing the kinds of [`sub_blocks`] (so that some sub-block scales round to
    /// 0 beside larger ones and keep the searches' levels), an odd number of them.
    fn mixed_blocks() -> Vec<f32> {
        let subs = sub_blocks(16);
        let mut values = Vec::new();
        for i in 0..40 {
            for kind in 0..6 {
                values.extend_from_slice(&subs[40 * kind + i]);
            }
        }
        let blocks = values.len() / QK_K;
        values.truncate((blocks - 1 + blocks % 2) * QK_K);
        values
    }

    type Quantizer<S> = fn(S, &[f32], &mut [u8]);

    /// The portable ways of quantizing type `t`: one vector, and two (what runs without SIMD);
    /// the block size.
    fn all_ways(
        t: usize,
    ) -> (
        Quantizer<lanes::Portable>,
        Quantizer<Two<lanes::Portable>>,
        usize,
    ) {
        match t {
            0 => (quantize_q2_k_with, quantize_q2_k_with, 84),
            1 => (quantize_q4_k_with, quantize_q4_k_with, 144),
            2 => (quantize_q5_k_with, quantize_q5_k_with, 176),
            _ => (quantize_q6_k_with, quantize_q6_k_with, 210),
        }
    }

    #[test]
    fn simd_and_portable_blocks_are_identical() {
        let mut values = mixed_blocks();
        values.extend(sub_blocks(32).concat());
        values.truncate(values.len() / QK_K * QK_K);
        for t in 0..4 {
            let (one, two, ts) = all_ways(t);
            // All the blocks at once (groups, and an incomplete last group), and each block
            // alone.
            let mut inputs: Vec<&[f32]> = vec![&values];
            inputs.extend(values.chunks_exact(QK_K));
            for x in inputs {
                let n = x.len() / QK_K * ts;
                let mut a = vec![0u8; n];
                one(lanes::Portable, x, &mut a);
                let mut b = vec![0u8; n];
                two(Two(lanes::Portable), x, &mut b);
                assert_eq!(a, b, "two portable vectors, type {t}");
                let mut one_by_one = vec![0u8; n];
                for (xb, ob) in x.chunks_exact(QK_K).zip(one_by_one.chunks_exact_mut(ts)) {
                    one(lanes::Portable, xb, ob);
                }
                assert_eq!(a, one_by_one, "block by block, type {t}");
                #[cfg(target_arch = "x86_64")]
                {
                    if let Some(s) = lanes::Avx2::new() {
                        let f = [
                            simd::q2_k_avx2,
                            simd::q4_k_avx2,
                            simd::q5_k_avx2,
                            simd::q6_k_avx2,
                        ][t];
                        let mut b = vec![0u8; n];
                        // SAFETY: AVX2 was detected (`Avx2::new`).
                        unsafe { f(s, x, &mut b) };
                        assert_eq!(a, b, "AVX2, type {t}");
                    }
                    if let Some(s) = lanes::Avx512::new() {
                        let f = [
                            simd::q2_k_avx512,
                            simd::q4_k_avx512,
                            simd::q5_k_avx512,
                            simd::q6_k_avx512,
                        ][t];
                        let mut b = vec![0u8; n];
                        // SAFETY: AVX-512F was detected (`Avx512::new`).
                        unsafe { f(s, x, &mut b) };
                        assert_eq!(a, b, "AVX-512, type {t}");
                    }
                }
            }
        }
    }
}
