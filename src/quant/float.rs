//! Scalar conversions between f32 and the 16-bit float formats stored in GGUF files.
//!
//! Both conversions round to nearest, ties to even, exactly as ggml's reference
//! (`ggml_compute_fp32_to_fp16` / `ggml_compute_fp32_to_bf16` in `ggml-impl.h`):
//!
//! * f32 → f16: overflow gives ±inf, subnormals are produced correctly, and every NaN becomes
//!   the canonical quiet NaN `sign | 0x7E00` (ggml drops the payload; numpy keeps part of it).
//! * f32 → bf16: a NaN keeps its top 16 bits with the quiet bit forced (`| 0x0040`); everything
//!   else is rounded to nearest even (finite values may round to ±inf).
//!
//! The reverse conversions are exact.

/// Converts an f32 to IEEE binary16 bits (round to nearest even, NaN → `sign | 0x7E00`).
#[inline]
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        // NaN: canonical quiet NaN, sign kept.
        return sign | 0x7e00;
    }
    if abs >= 0x4780_0000 {
        // |x| >= 65536 (including inf): always rounds to infinity.
        return sign | 0x7c00;
    }
    if abs >= 0x3880_0000 {
        // Normal f16 range (|x| >= 2^-14). Round the 13 dropped mantissa bits to nearest even;
        // a carry correctly bumps the exponent (and reaches 0x7C00 for |x| >= 65520).
        let rounded = abs + 0x0fff + ((abs >> 13) & 1);
        return sign | ((rounded - (112 << 23)) >> 13) as u16;
    }
    // Subnormal or zero: adding 0.5 (whose ulp is 2^-24, the f16 subnormal step) lets the
    // hardware round to nearest even; the low bits are then the f16 mantissa.
    let magic = f32::from_bits(126 << 23); // 0.5
    let sum = f32::from_bits(abs) + magic;
    sign | (sum.to_bits() - magic.to_bits()) as u16
}

/// Converts IEEE binary16 bits to f32 (exact).
#[inline]
pub fn f16_to_f32(half: u16) -> f32 {
    let sign = ((half as u32) & 0x8000) << 16;
    let exp = ((half >> 10) & 0x1f) as u32;
    let mant = (half & 0x03ff) as u32;
    let bits = match exp {
        0 => {
            if mant == 0 {
                sign
            } else {
                // Subnormal: mant * 2^-24 is exact in f32.
                sign | (mant as f32 * f32::from_bits(0x3380_0000)).to_bits()
            }
        }
        0x1f => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 112) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// Converts an f32 to bfloat16 bits (round to nearest even; NaN made quiet, as ggml does).
#[inline]
pub fn f32_to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Converts bfloat16 bits to f32 (exact).
#[inline]
pub fn bf16_to_f32(half: u16) -> f32 {
    f32::from_bits((half as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_edges() {
        assert_eq!(f32_to_f16(0.0), 0x0000);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65519.99), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
        assert_eq!(f32_to_f16(f32::from_bits(0x7f80_0001)), 0x7e00);
        assert_eq!(f32_to_f16(f32::from_bits(0xffc1_2345)), 0xfe00);
        // smallest subnormal and the tie below it
        assert_eq!(f32_to_f16(2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000);
        assert_eq!(f32_to_f16(2f32.powi(-25) * 1.0001), 0x0001);
        assert_eq!(f32_to_f16(3.0 * 2f32.powi(-25)), 0x0002);
        assert_eq!(f32_to_f16(2f32.powi(-14)), 0x0400);
    }

    #[test]
    fn f16_round_trip_all() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert_eq!(f32_to_f16(f), (h & 0x8000) | 0x7e00);
            } else {
                assert_eq!(f32_to_f16(f), h, "{h:#06x}");
            }
        }
    }

    #[test]
    fn bf16_edges() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80); // tie to even
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82); // tie to even (up)
        assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }
}
