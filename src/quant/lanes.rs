//! The K-quant sub-block searches (`make_qkx2_quants`, `make_qx_quants` with `rmse_type == 1`)
//! run for several sub-blocks at once, one sub-block per lane of a vector.
//!
//! The searches are chains of dependent float sums: one sub-block at a time, the processor waits
//! on each addition. Lane `k` here performs exactly the operations, in exactly the order, that the
//! one-sub-block search performs on sub-block `k` (branches become per-lane selections), so the
//! results are bit-identical while the chains of all lanes advance together. `kquants::tests`
//! checks every backend against the one-sub-block searches.
//!
//! The searches are written once, over [`Lanes`], which has three implementations: [`Portable`]
//! (eight lanes in plain arrays, element-wise loops the compiler vectorizes as it can) and, on
//! x86-64, [`Avx2`] (eight lanes, one `ymm` register) and [`Avx512`] (sixteen lanes, one `zmm`
//! register), which call the vector instructions directly. Every operation is a single IEEE
//! operation on each lane (no fused multiply-add, no reassociation), so all three give the same
//! bits.
//!
//! The searches do not write the levels `L` of the best candidate: the quantizers recompute
//! almost all of them from the final scales, so the searches return, per lane, the scale and
//! minimum the best candidate's levels were rounded with ([`level_qkx2`], [`level_qx`] recompute
//! one level with the same operations) and the caller asks for the few it keeps.

/// ggml's `nearest_int` (see `kquants::nearest_int`).
#[inline(always)]
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Vectors of `LANES` f32 values and the operations the searches need, each a single IEEE
/// operation per lane.
pub(super) trait Lanes: Copy {
    /// Sub-blocks searched together.
    const LANES: usize;
    /// A vector of f32 values.
    type F: Copy;
    /// A per-lane condition.
    type M: Copy;
    fn splat(self, v: f32) -> Self::F;
    /// The first `LANES` values of `v`.
    fn load(self, v: &[f32]) -> Self::F;
    /// Writes the lanes to the first `LANES` values of `out`.
    fn store(self, v: Self::F, out: &mut [f32]);
    fn add(self, a: Self::F, b: Self::F) -> Self::F;
    fn sub(self, a: Self::F, b: Self::F) -> Self::F;
    fn mul(self, a: Self::F, b: Self::F) -> Self::F;
    fn div(self, a: Self::F, b: Self::F) -> Self::F;
    fn sqrt(self, a: Self::F) -> Self::F;
    fn abs(self, a: Self::F) -> Self::F;
    /// `-a` (the sign flipped, as Rust's `-`).
    fn neg(self, a: Self::F) -> Self::F;
    /// `if a < b { a } else { b }`.
    fn min(self, a: Self::F, b: Self::F) -> Self::F;
    /// `if a > b { a } else { b }`.
    fn max(self, a: Self::F, b: Self::F) -> Self::F;
    fn lt(self, a: Self::F, b: Self::F) -> Self::M;
    fn gt(self, a: Self::F, b: Self::F) -> Self::M;
    fn eq(self, a: Self::F, b: Self::F) -> Self::M;
    /// `a != b` (true when either is NaN, as Rust's `!=`).
    fn ne(self, a: Self::F, b: Self::F) -> Self::M;
    fn and(self, a: Self::M, b: Self::M) -> Self::M;
    /// `a && !b`.
    fn and_not(self, a: Self::M, b: Self::M) -> Self::M;
    /// `if m { a } else { b }` per lane.
    fn select(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;
    /// Bit `k` set when lane `k`'s condition holds.
    fn bits(self, m: Self::M) -> u32;
    /// `nearest_int(t).clamp(lo, hi) as f32`, with ggml's `nearest_int`.
    fn level(self, t: Self::F, lo: i32, hi: i32) -> Self::F;
}

/// Eight lanes in arrays, for any processor.
#[derive(Clone, Copy)]
pub(super) struct Portable;

/// Lanes of [`Portable`].
const PL: usize = 8;

/// `[f(lane 0), …, f(lane 7)]`, as a plain loop.
macro_rules! each {
    ($init:expr, |$k:ident| $e:expr) => {{
        let mut r = [$init; PL];
        for $k in 0..PL {
            r[$k] = $e;
        }
        r
    }};
}

impl Lanes for Portable {
    const LANES: usize = PL;
    type F = [f32; PL];
    type M = [bool; PL];
    #[inline(always)]
    fn splat(self, v: f32) -> Self::F {
        [v; PL]
    }
    #[inline(always)]
    fn load(self, v: &[f32]) -> Self::F {
        v[..PL].try_into().expect("a whole vector")
    }
    #[inline(always)]
    fn store(self, v: Self::F, out: &mut [f32]) {
        out[..PL].copy_from_slice(&v);
    }
    #[inline(always)]
    fn add(self, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| a[k] + b[k])
    }
    #[inline(always)]
    fn sub(self, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| a[k] - b[k])
    }
    #[inline(always)]
    fn mul(self, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| a[k] * b[k])
    }
    #[inline(always)]
    fn div(self, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| a[k] / b[k])
    }
    #[inline(always)]
    fn sqrt(self, a: Self::F) -> Self::F {
        each!(0.0, |k| a[k].sqrt())
    }
    #[inline(always)]
    fn abs(self, a: Self::F) -> Self::F {
        each!(0.0, |k| a[k].abs())
    }
    #[inline(always)]
    fn neg(self, a: Self::F) -> Self::F {
        each!(0.0, |k| -a[k])
    }
    #[inline(always)]
    fn min(self, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| if a[k] < b[k] { a[k] } else { b[k] })
    }
    #[inline(always)]
    fn max(self, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| if a[k] > b[k] { a[k] } else { b[k] })
    }
    #[inline(always)]
    fn lt(self, a: Self::F, b: Self::F) -> Self::M {
        each!(false, |k| a[k] < b[k])
    }
    #[inline(always)]
    fn gt(self, a: Self::F, b: Self::F) -> Self::M {
        each!(false, |k| a[k] > b[k])
    }
    #[inline(always)]
    fn eq(self, a: Self::F, b: Self::F) -> Self::M {
        each!(false, |k| a[k] == b[k])
    }
    #[inline(always)]
    fn ne(self, a: Self::F, b: Self::F) -> Self::M {
        each!(false, |k| a[k] != b[k])
    }
    #[inline(always)]
    fn and(self, a: Self::M, b: Self::M) -> Self::M {
        each!(false, |k| a[k] && b[k])
    }
    #[inline(always)]
    fn and_not(self, a: Self::M, b: Self::M) -> Self::M {
        each!(false, |k| a[k] && !b[k])
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F {
        each!(0.0, |k| if m[k] { a[k] } else { b[k] })
    }
    #[inline(always)]
    fn bits(self, m: Self::M) -> u32 {
        let mut r = 0;
        for (k, &b) in m.iter().enumerate() {
            r |= u32::from(b) << k;
        }
        r
    }
    #[inline(always)]
    fn level(self, t: Self::F, lo: i32, hi: i32) -> Self::F {
        each!(0.0, |k| nearest_int(t[k]).clamp(lo, hi) as f32)
    }
}

/// Two vectors of `S` side by side: twice the lanes, and two independent chains of operations
/// for the processor to overlap.
#[derive(Clone, Copy)]
pub(super) struct Two<S>(pub S);

impl<S: Lanes> Lanes for Two<S> {
    const LANES: usize = 2 * S::LANES;
    type F = [S::F; 2];
    type M = [S::M; 2];
    #[inline(always)]
    fn splat(self, v: f32) -> Self::F {
        [self.0.splat(v); 2]
    }
    #[inline(always)]
    fn load(self, v: &[f32]) -> Self::F {
        [self.0.load(v), self.0.load(&v[S::LANES..])]
    }
    #[inline(always)]
    fn store(self, v: Self::F, out: &mut [f32]) {
        self.0.store(v[0], out);
        self.0.store(v[1], &mut out[S::LANES..]);
    }
    #[inline(always)]
    fn add(self, a: Self::F, b: Self::F) -> Self::F {
        [self.0.add(a[0], b[0]), self.0.add(a[1], b[1])]
    }
    #[inline(always)]
    fn sub(self, a: Self::F, b: Self::F) -> Self::F {
        [self.0.sub(a[0], b[0]), self.0.sub(a[1], b[1])]
    }
    #[inline(always)]
    fn mul(self, a: Self::F, b: Self::F) -> Self::F {
        [self.0.mul(a[0], b[0]), self.0.mul(a[1], b[1])]
    }
    #[inline(always)]
    fn div(self, a: Self::F, b: Self::F) -> Self::F {
        [self.0.div(a[0], b[0]), self.0.div(a[1], b[1])]
    }
    #[inline(always)]
    fn sqrt(self, a: Self::F) -> Self::F {
        [self.0.sqrt(a[0]), self.0.sqrt(a[1])]
    }
    #[inline(always)]
    fn abs(self, a: Self::F) -> Self::F {
        [self.0.abs(a[0]), self.0.abs(a[1])]
    }
    #[inline(always)]
    fn neg(self, a: Self::F) -> Self::F {
        [self.0.neg(a[0]), self.0.neg(a[1])]
    }
    #[inline(always)]
    fn min(self, a: Self::F, b: Self::F) -> Self::F {
        [self.0.min(a[0], b[0]), self.0.min(a[1], b[1])]
    }
    #[inline(always)]
    fn max(self, a: Self::F, b: Self::F) -> Self::F {
        [self.0.max(a[0], b[0]), self.0.max(a[1], b[1])]
    }
    #[inline(always)]
    fn lt(self, a: Self::F, b: Self::F) -> Self::M {
        [self.0.lt(a[0], b[0]), self.0.lt(a[1], b[1])]
    }
    #[inline(always)]
    fn gt(self, a: Self::F, b: Self::F) -> Self::M {
        [self.0.gt(a[0], b[0]), self.0.gt(a[1], b[1])]
    }
    #[inline(always)]
    fn eq(self, a: Self::F, b: Self::F) -> Self::M {
        [self.0.eq(a[0], b[0]), self.0.eq(a[1], b[1])]
    }
    #[inline(always)]
    fn ne(self, a: Self::F, b: Self::F) -> Self::M {
        [self.0.ne(a[0], b[0]), self.0.ne(a[1], b[1])]
    }
    #[inline(always)]
    fn and(self, a: Self::M, b: Self::M) -> Self::M {
        [self.0.and(a[0], b[0]), self.0.and(a[1], b[1])]
    }
    #[inline(always)]
    fn and_not(self, a: Self::M, b: Self::M) -> Self::M {
        [self.0.and_not(a[0], b[0]), self.0.and_not(a[1], b[1])]
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F {
        [
            self.0.select(m[0], a[0], b[0]),
            self.0.select(m[1], a[1], b[1]),
        ]
    }
    #[inline(always)]
    fn bits(self, m: Self::M) -> u32 {
        self.0.bits(m[0]) | self.0.bits(m[1]) << S::LANES
    }
    #[inline(always)]
    fn level(self, t: Self::F, lo: i32, hi: i32) -> Self::F {
        [self.0.level(t[0], lo, hi), self.0.level(t[1], lo, hi)]
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// Eight lanes in an AVX2 register. A value exists only on a processor with AVX2.
    #[derive(Clone, Copy)]
    pub(in crate::quant) struct Avx2(());

    impl Avx2 {
        /// `Some` if the processor has AVX2.
        #[inline]
        pub(in crate::quant) fn new() -> Option<Self> {
            std::arch::is_x86_feature_detected!("avx2").then_some(Avx2(()))
        }
    }

    /// Sixteen lanes in an AVX-512 register. A value exists only on a processor with AVX-512F.
    #[derive(Clone, Copy)]
    pub(in crate::quant) struct Avx512(());

    impl Avx512 {
        /// `Some` if the processor has AVX-512F.
        #[inline]
        pub(in crate::quant) fn new() -> Option<Self> {
            std::arch::is_x86_feature_detected!("avx512f").then_some(Avx512(()))
        }
    }

    /// Methods whose bodies call vector intrinsics.
    macro_rules! simd_methods {
        ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block)*) => {
            $(
                #[inline(always)]
                fn $name(self, $($arg: $ty),*) -> $ret {
                    // SAFETY: a value of `Self` is only made by `new`, after the processor was
                    // found to support the feature the intrinsics need; slice lengths are checked
                    // before any pointer is dereferenced.
                    unsafe { $body }
                }
            )*
        };
    }

    impl Lanes for Avx2 {
        const LANES: usize = 8;
        type F = __m256;
        type M = __m256;
        simd_methods! {
            fn splat(v: f32) -> __m256 { _mm256_set1_ps(v) }
            fn load(v: &[f32]) -> __m256 {
                assert!(v.len() >= 8);
                _mm256_loadu_ps(v.as_ptr())
            }
            fn store(v: __m256, out: &mut [f32]) -> () {
                assert!(out.len() >= 8);
                _mm256_storeu_ps(out.as_mut_ptr(), v)
            }
            fn add(a: __m256, b: __m256) -> __m256 { _mm256_add_ps(a, b) }
            fn sub(a: __m256, b: __m256) -> __m256 { _mm256_sub_ps(a, b) }
            fn mul(a: __m256, b: __m256) -> __m256 { _mm256_mul_ps(a, b) }
            fn div(a: __m256, b: __m256) -> __m256 { _mm256_div_ps(a, b) }
            fn sqrt(a: __m256) -> __m256 { _mm256_sqrt_ps(a) }
            fn abs(a: __m256) -> __m256 {
                _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)))
            }
            fn neg(a: __m256) -> __m256 { _mm256_xor_ps(a, _mm256_set1_ps(-0.0)) }
            // `minps`/`maxps` return their second operand unless the comparison holds.
            fn min(a: __m256, b: __m256) -> __m256 { _mm256_min_ps(a, b) }
            fn max(a: __m256, b: __m256) -> __m256 { _mm256_max_ps(a, b) }
            fn lt(a: __m256, b: __m256) -> __m256 { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
            fn gt(a: __m256, b: __m256) -> __m256 { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
            fn eq(a: __m256, b: __m256) -> __m256 { _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b) }
            fn ne(a: __m256, b: __m256) -> __m256 { _mm256_cmp_ps::<_CMP_NEQ_UQ>(a, b) }
            fn and(a: __m256, b: __m256) -> __m256 { _mm256_and_ps(a, b) }
            fn and_not(a: __m256, b: __m256) -> __m256 { _mm256_andnot_ps(b, a) }
            fn select(m: __m256, a: __m256, b: __m256) -> __m256 { _mm256_blendv_ps(b, a, m) }
            fn bits(m: __m256) -> u32 { _mm256_movemask_ps(m) as u32 }
            fn level(t: __m256, lo: i32, hi: i32) -> __m256 {
                let v = _mm256_castps_si256(_mm256_add_ps(t, _mm256_set1_ps(12_582_912.0)));
                let i = _mm256_sub_epi32(
                    _mm256_and_si256(v, _mm256_set1_epi32(0x007f_ffff)),
                    _mm256_set1_epi32(0x0040_0000),
                );
                let i = _mm256_min_epi32(_mm256_max_epi32(i, _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
                _mm256_cvtepi32_ps(i)
            }
        }
    }

    impl Lanes for Avx512 {
        const LANES: usize = 16;
        type F = __m512;
        type M = __mmask16;
        #[inline(always)]
        fn and(self, a: __mmask16, b: __mmask16) -> __mmask16 {
            a & b
        }
        #[inline(always)]
        fn and_not(self, a: __mmask16, b: __mmask16) -> __mmask16 {
            a & !b
        }
        #[inline(always)]
        fn bits(self, m: __mmask16) -> u32 {
            u32::from(m)
        }
        simd_methods! {
            fn splat(v: f32) -> __m512 { _mm512_set1_ps(v) }
            fn load(v: &[f32]) -> __m512 {
                assert!(v.len() >= 16);
                _mm512_loadu_ps(v.as_ptr())
            }
            fn store(v: __m512, out: &mut [f32]) -> () {
                assert!(out.len() >= 16);
                _mm512_storeu_ps(out.as_mut_ptr(), v)
            }
            fn add(a: __m512, b: __m512) -> __m512 { _mm512_add_ps(a, b) }
            fn sub(a: __m512, b: __m512) -> __m512 { _mm512_sub_ps(a, b) }
            fn mul(a: __m512, b: __m512) -> __m512 { _mm512_mul_ps(a, b) }
            fn div(a: __m512, b: __m512) -> __m512 { _mm512_div_ps(a, b) }
            fn sqrt(a: __m512) -> __m512 { _mm512_sqrt_ps(a) }
            fn abs(a: __m512) -> __m512 { _mm512_abs_ps(a) }
            fn neg(a: __m512) -> __m512 {
                _mm512_castsi512_ps(_mm512_xor_si512(
                    _mm512_castps_si512(a),
                    _mm512_set1_epi32(i32::MIN),
                ))
            }
            // `vminps`/`vmaxps` return their second operand unless the comparison holds.
            fn min(a: __m512, b: __m512) -> __m512 { _mm512_min_ps(a, b) }
            fn max(a: __m512, b: __m512) -> __m512 { _mm512_max_ps(a, b) }
            fn lt(a: __m512, b: __m512) -> __mmask16 { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
            fn gt(a: __m512, b: __m512) -> __mmask16 { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
            fn eq(a: __m512, b: __m512) -> __mmask16 { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) }
            fn ne(a: __m512, b: __m512) -> __mmask16 { _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, b) }
            fn select(m: __mmask16, a: __m512, b: __m512) -> __m512 { _mm512_mask_blend_ps(m, b, a) }
            fn level(t: __m512, lo: i32, hi: i32) -> __m512 {
                let v = _mm512_castps_si512(_mm512_add_ps(t, _mm512_set1_ps(12_582_912.0)));
                let i = _mm512_sub_epi32(
                    _mm512_and_si512(v, _mm512_set1_epi32(0x007f_ffff)),
                    _mm512_set1_epi32(0x0040_0000),
                );
                let i = _mm512_min_epi32(_mm512_max_epi32(i, _mm512_set1_epi32(lo)), _mm512_set1_epi32(hi));
                _mm512_cvtepi32_ps(i)
            }
        }
    }
}

/// What [`qkx2`] finds for each lane.
pub(super) struct Qkx2<F, M> {
    /// The scale, 0 for a flat sub-block.
    pub scale: F,
    /// `-min`, the minimum of `x ≈ scale·L + min` negated.
    pub neg_min: F,
    /// The `iscale` the best candidate's levels were rounded with.
    pub l_iscale: F,
    /// The minimum subtracted from the values before that rounding.
    pub l_min: F,
    /// Sub-blocks whose maximum equals their minimum (levels 0).
    pub flat: M,
}

/// Level `L` of value `x` in a sub-block searched by [`qkx2`] (`l_iscale`, `l_min` of its lane):
/// the same rounding the best candidate made.
#[inline(always)]
pub(super) fn level_qkx2(nmax: i32, l_iscale: f32, l_min: f32, flat: bool, x: f32) -> u8 {
    if flat {
        0
    } else {
        nearest_int(l_iscale * (x - l_min)).clamp(0, nmax) as u8
    }
}

/// The error of one value: `|diff|` or `diff²`.
#[inline(always)]
fn err<S: Lanes>(s: S, diff: S::F, use_mad: bool) -> S::F {
    if use_mad {
        s.abs(diff)
    } else {
        s.mul(diff, diff)
    }
}

/// `make_qkx2_quants` for the `N`-value sub-blocks in the lanes of `x` (lane `k` of `x[i]` is
/// value `i` of sub-block `k`) with weights `w`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn qkx2<S: Lanes, const N: usize>(
    s: S,
    nmax: i32,
    x: &[S::F; N],
    w: &[S::F; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> Qkx2<S::F, S::M> {
    let zero = s.splat(0.0);
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = s.mul(sum_w, x[0]);
    for i in 1..N {
        min = s.min(x[i], min);
        max = s.max(x[i], max);
        sum_w = s.add(sum_w, w[i]);
        sum_x = s.add(sum_x, s.mul(w[i], x[i]));
    }
    // `if min > 0 { min = 0 }`
    min = s.min(zero, min);
    let flat = s.eq(max, min);
    let nmaxf = nmax as f32;
    let iscale = s.div(s.splat(nmaxf), s.sub(max, min));
    let mut scale = s.div(s.splat(1.0), iscale);
    let mut best_error = zero;
    for i in 0..N {
        let l = s.level(s.mul(iscale, s.sub(x[i], min)), 0, nmax);
        let diff = s.sub(s.add(s.mul(scale, l), min), x[i]);
        best_error = s.add(best_error, s.mul(w[i], err(s, diff, use_mad)));
    }
    let mut l_iscale = iscale;
    let mut l_min = min;
    if nstep >= 1 {
        let mut aux = [zero; N];
        for is in 0..=nstep {
            let iscale = s.div(s.splat(rmin + rdelta * is as f32 + nmaxf), s.sub(max, min));
            let mut sum_l = zero;
            let mut sum_l2 = zero;
            let mut sum_xl = zero;
            for i in 0..N {
                let l = s.level(s.mul(iscale, s.sub(x[i], min)), 0, nmax);
                aux[i] = l;
                let wl = s.mul(w[i], l);
                sum_l = s.add(sum_l, wl);
                sum_l2 = s.add(sum_l2, s.mul(wl, l));
                sum_xl = s.add(sum_xl, s.mul(wl, x[i]));
            }
            let d = s.sub(s.mul(sum_w, sum_l2), s.mul(sum_l, sum_l));
            let ok = s.gt(d, zero);
            let this_scale = s.div(s.sub(s.mul(sum_w, sum_xl), s.mul(sum_x, sum_l)), d);
            let this_min = s.div(s.sub(s.mul(sum_l2, sum_x), s.mul(sum_l, sum_xl)), d);
            let positive = s.gt(this_min, zero);
            let this_scale = s.select(positive, s.div(sum_xl, sum_l2), this_scale);
            let this_min = s.select(positive, zero, this_min);
            let mut cur_error = zero;
            for i in 0..N {
                let diff = s.sub(s.add(s.mul(this_scale, aux[i]), this_min), x[i]);
                cur_error = s.add(cur_error, s.mul(w[i], err(s, diff, use_mad)));
            }
            let take = s.and_not(s.and(ok, s.lt(cur_error, best_error)), flat);
            best_error = s.select(take, cur_error, best_error);
            scale = s.select(take, this_scale, scale);
            l_iscale = s.select(take, iscale, l_iscale);
            l_min = s.select(take, min, l_min);
            min = s.select(take, this_min, min);
        }
    }
    Qkx2 {
        scale: s.select(flat, zero, scale),
        neg_min: s.neg(min),
        l_iscale,
        l_min,
        flat,
    }
}

/// What [`qx_rmse1`] finds for each lane.
pub(super) struct QxRmse1<F, M> {
    /// The scale, 0 for an all-zero sub-block.
    pub scale: F,
    /// The `iscale` the best candidate's levels were rounded with.
    pub l_iscale: F,
    /// Sub-blocks below ggml's `GROUP_MAX_EPS` (levels 0).
    pub zero: M,
}

/// Level `L + nmax` of value `x` in a sub-block searched by [`qx_rmse1`].
#[inline(always)]
pub(super) fn level_qx(nmax: i32, l_iscale: f32, zero: bool, x: f32) -> i8 {
    if zero {
        0
    } else {
        (nearest_int(l_iscale * x).clamp(-nmax, nmax - 1) + nmax) as i8
    }
}

/// `make_qx_quants` with `rmse_type == 1` and no importance weights, for the `N`-value
/// sub-blocks in the lanes of `x`.
#[inline(always)]
pub(super) fn qx_rmse1<S: Lanes, const N: usize>(
    s: S,
    nmax: i32,
    x: &[S::F; N],
) -> QxRmse1<S::F, S::M> {
    let zero = s.splat(0.0);
    let mut max = zero;
    let mut amax = zero;
    for &v in x {
        let ax = s.abs(v);
        let larger = s.gt(ax, amax);
        amax = s.select(larger, ax, amax);
        max = s.select(larger, v, max);
    }
    // The weights `x²` and the products `x²·x` the sums start from, as the reference's
    // left-to-right `w * v * l` computes them.
    let mut w = [zero; N];
    let mut wx = [zero; N];
    for i in 0..N {
        w[i] = s.mul(x[i], x[i]);
        wx[i] = s.mul(w[i], x[i]);
    }
    let nmaxf = nmax as f32;
    let iscale = s.div(s.splat(-nmaxf), max);
    let (sumlx, suml2) = qx_sums(s, nmax, x, &w, &wx, iscale);
    let mut scale = s.select(s.ne(suml2, zero), s.div(sumlx, suml2), zero);
    let mut best = s.mul(scale, sumlx);
    let mut l_iscale = iscale;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = s.div(s.splat(-(nmaxf + 0.1f32 * is as f32)), max);
        let (sumlx, suml2) = qx_sums(s, nmax, x, &w, &wx, iscale);
        let take = s.and(
            s.gt(suml2, zero),
            s.gt(s.mul(sumlx, sumlx), s.mul(best, suml2)),
        );
        scale = s.select(take, s.div(sumlx, suml2), scale);
        best = s.select(take, s.mul(scale, sumlx), best);
        l_iscale = s.select(take, iscale, l_iscale);
    }
    // All-zero sub-blocks (below ggml's GROUP_MAX_EPS): L = 0, scale 0.
    let is_zero = s.lt(amax, s.splat(1e-15));
    QxRmse1 {
        scale: s.select(is_zero, zero, scale),
        l_iscale,
        zero: is_zero,
    }
}

/// The sums `Σ w·x·L` and `Σ w·L²` of [`qx_rmse1`] for one candidate `iscale`.
#[inline(always)]
fn qx_sums<S: Lanes, const N: usize>(
    s: S,
    nmax: i32,
    x: &[S::F; N],
    w: &[S::F; N],
    wx: &[S::F; N],
    iscale: S::F,
) -> (S::F, S::F) {
    let zero = s.splat(0.0);
    let mut sumlx = zero;
    let mut suml2 = zero;
    for i in 0..N {
        let l = s.level(s.mul(iscale, x[i]), -nmax, nmax - 1);
        sumlx = s.add(sumlx, s.mul(wx[i], l));
        suml2 = s.add(suml2, s.mul(s.mul(w[i], l), l));
    }
    (sumlx, suml2)
}
