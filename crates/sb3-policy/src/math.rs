//! Element functions in float32, written without branches so that loops over them vectorise.
//!
//! torch evaluates `tanh`, `sigmoid` and `exp` with SLEEF's vectorised routines (about one
//! unit in the last place); these are of the same accuracy (checked against `f64` in the
//! tests below), so actions agree with SB3's far inside the 1e-4 tolerance.

/// `log2(e)`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln(2)` split in a part exact in float32 and the rest (Cody–Waite range reduction).
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// Adding and subtracting `1.5 · 2^23` rounds a float32 of magnitude below 2^22 to an integer.
const ROUNDER: f32 = 12_582_912.0;
/// `exp` of anything above this overflows float32.
const EXP_MAX: f32 = 88.72;
/// `exp` of anything below this is below the smallest normal float32; it is returned as
/// about `1.2e-38` (never used where that differs from 0 by more than the tolerance).
const EXP_MIN: f32 = -87.3;

/// `e^x` for finite or infinite `x` (NaN gives NaN), within about 1 ulp for normal results.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let clamped = x.clamp(EXP_MIN, EXP_MAX);
    // x = n·ln2 + r with |r| ≤ ln2/2.
    let shifted = clamped * LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    // e^r by its Taylor series to r^7 (remainder below 5e-9 relative).
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^n from the integer held in the low bits of `shifted`.
    let n_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    let result = p * scale;
    let result = if x > EXP_MAX { f32::INFINITY } else { result };
    if x.is_nan() {
        x
    } else {
        result
    }
}

/// `tanh(x)`, odd and within a few ulp: a Taylor polynomial near 0, `1 - 2/(e^{2|x|} + 1)`
/// elsewhere, exactly ±1 beyond |x| = 9.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Near zero: x·(1 - x²/3 + 2x⁴/15 - ...), to x^17 (|x| < 0.55: remainder below 3e-8 relative).
    let z = a * a;
    let mut p = -0.000_590_027_4_f32; // -6404582 / 10854718875
    p = p * z + 0.001_455_834_4; // 929569 / 638512875
    p = p * z - 0.003_592_128; // 21844 / 6081075
    p = p * z + 0.008_863_235; // 1382 / 155925
    p = p * z - 0.021_869_488; // 62 / 2835
    p = p * z + 0.053_968_254; // 17 / 315
    p = p * z - 0.133_333_33; // 2 / 15
    p = p * z + 0.333_333_34; // 1 / 3
    let small = a - a * z * p;
    let e = exp(2.0 * a);
    let large = 1.0 - 2.0 / (e + 1.0);
    let magnitude = if a < 0.55 { small } else { large };
    let magnitude = if a > 9.0 { 1.0 } else { magnitude };
    let result = magnitude.copysign(x);
    if x.is_nan() {
        x
    } else {
        result
    }
}

/// `1 / (1 + e^{-x})`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        let ulp = (f32::from_bits(b32.abs().to_bits() + 1) - b32.abs()) as f64;
        ((a as f64) - b).abs() / ulp
    }

    fn sweep() -> impl Iterator<Item = f32> {
        (-200_000..=200_000)
            .map(|i| i as f32 * 1e-4)
            .chain([0.0, -0.0, 1e-30, -1e-30, 1e-8, 20.0, -20.0, 80.0, -80.0, 88.0, -87.0])
    }

    #[test]
    fn exp_is_within_two_ulps() {
        for x in sweep() {
            let want = (x as f64).exp();
            assert!(ulps(exp(x), want) <= 2.0, "exp({x}) = {} want {want}", exp(x));
        }
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_three_ulps_and_odd() {
        for x in sweep() {
            let want = (x as f64).tanh();
            assert!(ulps(tanh(x), want) <= 3.0, "tanh({x}) = {} want {want}", tanh(x));
            assert_eq!(tanh(-x), -tanh(x));
        }
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn sigmoid_is_close() {
        for x in sweep() {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                ulps(sigmoid(x), want) <= 3.0,
                "sigmoid({x}) = {} want {want}",
                sigmoid(x)
            );
        }
    }
}
