//! Activation functions, named by the `torch.nn` class SB3 was given (`activation_fn`).

use std::fmt;

use sb3_format::GlobalName;

use crate::error::{unsupported, Result};
use crate::math;

/// An activation module, constructed (as SB3 does) with its default arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activation {
    /// `nn.ReLU`.
    ReLU,
    /// `nn.Tanh`.
    Tanh,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.ELU` (alpha 1).
    ELU,
    /// `nn.LeakyReLU` (negative slope 0.01).
    LeakyReLU,
    /// `nn.SiLU` (x · sigmoid(x)).
    SiLU,
    /// `nn.GELU` (the exact, erf form).
    GELU,
    /// `nn.Softplus` (beta 1, threshold 20).
    Softplus,
    /// `nn.Mish`.
    Mish,
    /// `nn.SELU`.
    SELU,
    /// `nn.CELU` (alpha 1).
    CELU,
    /// `nn.ReLU6`.
    ReLU6,
    /// `nn.Hardtanh` (-1, 1).
    Hardtanh,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.Hardsigmoid`.
    Hardsigmoid,
    /// `nn.Softsign`.
    Softsign,
    /// `nn.Tanhshrink`.
    Tanhshrink,
    /// `nn.LogSigmoid`.
    LogSigmoid,
    /// `nn.Identity`.
    Identity,
    /// `nn.Hardshrink` (lambda 0.5).
    Hardshrink,
    /// `nn.Softshrink` (lambda 0.5).
    Softshrink,
    /// `nn.RReLU` in evaluation mode: a leaky ReLU of slope (1/8 + 1/3) / 2.
    RReLU,
    /// `nn.PReLU`: a leaky ReLU whose negative slope is learned, one per activation layer
    /// (its `weight` in the state dict, beside the Linear layers).
    PReLU,
}

/// Every supported activation with its `torch.nn` class name.
const NAMES: [(&str, Activation); 23] = [
    ("ReLU", Activation::ReLU),
    ("Tanh", Activation::Tanh),
    ("Sigmoid", Activation::Sigmoid),
    ("ELU", Activation::ELU),
    ("LeakyReLU", Activation::LeakyReLU),
    ("SiLU", Activation::SiLU),
    ("GELU", Activation::GELU),
    ("Softplus", Activation::Softplus),
    ("Mish", Activation::Mish),
    ("SELU", Activation::SELU),
    ("CELU", Activation::CELU),
    ("ReLU6", Activation::ReLU6),
    ("Hardtanh", Activation::Hardtanh),
    ("Hardswish", Activation::Hardswish),
    ("Hardsigmoid", Activation::Hardsigmoid),
    ("Softsign", Activation::Softsign),
    ("Tanhshrink", Activation::Tanhshrink),
    ("LogSigmoid", Activation::LogSigmoid),
    ("Identity", Activation::Identity),
    ("Hardshrink", Activation::Hardshrink),
    ("Softshrink", Activation::Softshrink),
    ("RReLU", Activation::RReLU),
    ("PReLU", Activation::PReLU),
];

impl Activation {
    /// The activation a pickled class names (`torch.nn.modules.activation.ReLU`); an error
    /// naming the class for anything else (a custom module, a class outside `torch.nn`).
    ///
    /// ```
    /// use sb3_format::GlobalName;
    /// use sb3_policy::Activation;
    /// let relu = GlobalName::new("torch.nn.modules.activation", "ReLU");
    /// assert_eq!(Activation::from_class(&relu).unwrap(), Activation::ReLU);
    /// let custom = GlobalName::new("__main__", "Swish");
    /// assert!(Activation::from_class(&custom).unwrap_err().to_string().contains("__main__.Swish"));
    /// ```
    pub fn from_class(class: &GlobalName) -> Result<Activation> {
        let in_torch_nn = class.module == "torch.nn" || class.module.starts_with("torch.nn.");
        NAMES
            .iter()
            .find(|(name, _)| in_torch_nn && *name == class.name)
            .map(|(_, activation)| *activation)
            .ok_or_else(|| unsupported(format!("activation function {class}")))
    }

    /// The `torch.nn` class name (`"ReLU"`).
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, a)| *a == self).map_or("?", |(name, _)| name)
    }

    /// Whether the activation has a parameter learned in training (PReLU's slope), which
    /// comes from the state dict.
    pub(crate) fn is_learned(self) -> bool {
        self == Activation::PReLU
    }

    /// Applies the activation in place. `learned` is the layer's learned parameter for
    /// [`is_learned`](Self::is_learned) activations (PReLU's negative slope); the others have
    /// none and pass 0.
    #[inline(always)]
    pub(crate) fn apply(self, values: &mut [f32], learned: f32) {
        match self {
            Activation::ReLU => values.iter_mut().for_each(|v| *v = relu(*v)),
            Activation::Tanh => values.iter_mut().for_each(|v| *v = math::tanh(*v)),
            Activation::Sigmoid => values.iter_mut().for_each(|v| *v = math::sigmoid(*v)),
            Activation::Identity => {}
            other => values.iter_mut().for_each(|v| *v = other.scalar(*v, learned)),
        }
    }

    /// The less common activations, one value at a time (they are not on any hot path worth
    /// vectorising): the piecewise ones in float32 as torch's kernels compute them (where
    /// they overflow, they overflow alike), the others in float64 then rounded.
    fn scalar(self, x: f32, learned: f32) -> f32 {
        // A float64 formula, rounded once to float32; NaN stays the input's NaN.
        let wide = |formula: fn(f64) -> f64| if x.is_nan() { x } else { formula(f64::from(x)) as f32 };
        match self {
            Activation::Hardswish => hardswish(x),
            Activation::Hardsigmoid => hardsigmoid(x),
            Activation::Hardshrink => hardshrink(x),
            Activation::Softshrink => softshrink(x),
            Activation::RReLU => rrelu_eval(x),
            Activation::PReLU => prelu(x, learned),
            Activation::ELU => wide(|v| elu(v, 1.0)),
            Activation::LeakyReLU => wide(|v| if v >= 0.0 { v } else { v * f64::from(0.01f32) }),
            Activation::SiLU => wide(|v| v / (1.0 + (-v).exp())),
            Activation::GELU => wide(|v| 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))),
            Activation::Softplus => wide(softplus),
            Activation::Mish => wide(|v| v * softplus(v).tanh()),
            Activation::SELU => wide(|v| 1.050_700_987_355_480_5 * elu(v, 1.673_263_242_354_377_3)),
            Activation::CELU => wide(|v| elu(v, 1.0)),
            Activation::ReLU6 => wide(|v| v.clamp(0.0, 6.0)),
            Activation::Hardtanh => wide(|v| v.clamp(-1.0, 1.0)),
            Activation::Softsign => wide(|v| v / (1.0 + v.abs())),
            // torch subtracts in float32 (`x - x.tanh()`): near 0 the difference cancels, so it
            // is taken of the rounded tanh (exact by Sterbenz's lemma), not in float64.
            Activation::Tanhshrink => x - f64::from(x).tanh() as f32,
            Activation::LogSigmoid => wide(|v| -softplus(-v)),
            Activation::ReLU => wide(|v| v.max(0.0)),
            Activation::Tanh => wide(f64::tanh),
            Activation::Sigmoid => wide(|v| 1.0 / (1.0 + (-v).exp())),
            Activation::Identity => x,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `max(x, 0)` keeping NaN (as torch's `relu` does).
#[inline(always)]
fn relu(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

/// `x · min(max(x + 3, 0), 6) / 6` in float32, in torch's order: the product overflows to inf
/// above 5.7e37 as torch's does (a float64 evaluation would stay finite).
#[inline(always)]
fn hardswish(x: f32) -> f32 {
    x * clamp_keep_nan(x + 3.0, 0.0, 6.0) / 6.0
}

/// `min(max(x + 3, 0), 6) / 6` in float32, as torch computes it.
#[inline(always)]
fn hardsigmoid(x: f32) -> f32 {
    clamp_keep_nan(x + 3.0, 0.0, 6.0) / 6.0
}

/// torch's `hardshrink`: 0 within [-0.5, 0.5], `x` elsewhere (NaN stays NaN).
#[inline(always)]
fn hardshrink(x: f32) -> f32 {
    if (-0.5..=0.5).contains(&x) {
        0.0
    } else {
        x
    }
}

/// torch's `softshrink`: `x ∓ 0.5` outside [-0.5, 0.5], `x · 0` inside (so -0.25 gives -0.0
/// and NaN stays NaN, as torch's kernel gives).
#[inline(always)]
fn softshrink(x: f32) -> f32 {
    if x > 0.5 {
        x - 0.5
    } else if x < -0.5 {
        x + 0.5
    } else {
        x * 0.0
    }
}

/// torch's `prelu` kernel: `x > 0 ? x : weight · x`, in float32.
#[inline(always)]
fn prelu(x: f32, weight: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        weight * x
    }
}

/// `F.rrelu(x, 1/8, 1/3, training=False)`: `leaky_relu` with the slope torch computes in
/// float64 and casts to float32.
#[inline(always)]
fn rrelu_eval(x: f32) -> f32 {
    const SLOPE: f64 = (1.0 / 8.0 + 1.0 / 3.0) / 2.0;
    prelu(x, SLOPE as f32)
}

/// `min(max(x, low), high)`, NaN staying NaN (torch's `maximum`/`minimum` propagate it).
#[inline(always)]
fn clamp_keep_nan(x: f32, low: f32, high: f32) -> f32 {
    if x < low {
        low
    } else if x > high {
        high
    } else {
        x
    }
}

fn elu(x: f64, alpha: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        alpha * x.exp_m1()
    }
}

/// `log(1 + e^x)`, linear above 20 as torch's default threshold makes it.
fn softplus(x: f64) -> f64 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The error function, to double precision (Abramowitz–Stegun 7.1.26 is too coarse; this is
/// the series for small |x| and the continued fraction of erfc for large |x|).
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let value = if a < 2.5 {
        // erf(x) = 2/√π · Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = a;
        let mut sum = a;
        let z = a * a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -z / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = e^{-a²}/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))), evaluated bottom up.
        let mut fraction = 0.0;
        for k in (1..60).rev() {
            fraction = (f64::from(k) / 2.0) / (a + fraction);
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + fraction)
    };
    value.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_classes_are_refused() {
        for (name, activation) in NAMES {
            let class = GlobalName::new("torch.nn.modules.activation", name);
            assert_eq!(Activation::from_class(&class).unwrap(), activation);
            assert_eq!(activation.name(), name);
        }
        let err = Activation::from_class(&GlobalName::new("mypkg", "ReLU")).unwrap_err();
        assert!(err.to_string().contains("mypkg.ReLU"), "{err}");
        assert!(Activation::from_class(&GlobalName::new("torch.nn", "Softmax")).is_err());
    }

    #[test]
    fn values_match_the_definitions() {
        // Values printed by torch 2.15 (float32) for x = -1.5, 0.5, 2.
        let cases: [(Activation, [f32; 3]); 8] = [
            (Activation::ELU, [-0.776_869_83, 0.5, 2.0]),
            (Activation::LeakyReLU, [-0.015, 0.5, 2.0]),
            (Activation::SiLU, [-0.273_638_28, 0.311_229_68, 1.761_594]),
            (Activation::GELU, [-0.100_210_86, 0.345_731_23, 1.954_499_7]),
            (Activation::Softplus, [0.201_413_29, 0.974_077, 2.126_928]),
            (Activation::Mish, [-0.298_099_76, 0.375_245_24, 1.943_959]),
            (Activation::SELU, [-1.365_814_3, 0.525_350_5, 2.101_402]),
            (Activation::Hardswish, [-0.375, 0.291_666_66, 1.666_666_6]),
        ];
        for (activation, want) in cases {
            let mut v = [-1.5f32, 0.5, 2.0];
            activation.apply(&mut v, 0.0);
            for (g, w) in v.iter().zip(want) {
                assert!((g - w).abs() < 2e-6, "{activation}: {v:?} want {want:?}");
            }
        }
        let mut v = [-1.0f32, f32::NAN, 3.0];
        Activation::ReLU.apply(&mut v, 0.0);
        assert_eq!(v[0], 0.0);
        assert!(v[1].is_nan());
        assert_eq!(v[2], 3.0);
    }

    #[test]
    fn prelu_is_torch_float32_bit_for_bit() {
        // nn.PReLU with weight -0.3, printed by torch 2.15 (float32 bits).
        let x = [-1.5f32, 0.5, 2.0, -0.0, f32::NEG_INFINITY, -3e38, -1e-45, 0.0];
        let want: [u32; 8] = [
            0x3ee6_6667,
            0x3f00_0000,
            0x4000_0000,
            0x0,
            0x7f80_0000,
            0x7e87_6abe,
            0x0,
            0x8000_0000,
        ];
        let mut v = x;
        Activation::PReLU.apply(&mut v, -0.3);
        assert_eq!(v.map(f32::to_bits), want, "{v:?}");
        let mut nan = [f32::NAN];
        Activation::PReLU.apply(&mut nan, -0.3);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn tanhshrink_cancels_as_torch_float32() {
        // F.tanhshrink printed by torch 2.15 (float32 bits): near 0, x - tanh(x) keeps only the
        // bits float32 leaves (3.49e-10 for 1e-3, not float64's 3.33e-10).
        let x = [1e-3f32, -0.01, 0.3, 2.5, -7.0, 1e-20, f32::INFINITY, f32::NEG_INFINITY];
        let want: [u32; 8] = [
            0x2fc0_0000,
            0xb4b3_0000,
            0x3c0e_5580,
            0x3fc1_b6a0,
            0xc0c0_0004,
            0x0,
            0x7f80_0000,
            0xff80_0000,
        ];
        let mut v = x;
        Activation::Tanhshrink.apply(&mut v, 0.0);
        assert_eq!(v.map(f32::to_bits), want, "{v:?}");
    }

    #[test]
    fn hard_activations_are_torch_float32_bit_for_bit() {
        // Printed by torch 2.15 (float32): Hardswish's product overflows above 5.7e37.
        let x = [5.6e37f32, 5.7e37, -1.5, 0.5, 2.0, -3.0, 3.0, f32::NEG_INFINITY];
        let swish = [
            f32::from_bits(0x7e28_84d5), // 5.6e37 in float32
            f32::INFINITY,
            -0.375,
            0.291_666_66,
            1.666_666_6,
            -0.0,
            3.0,
        ];
        let sigmoid = [1.0f32, 1.0, 0.25, 0.583_333_3, 0.833_333_3, 0.0, 1.0, 0.0];
        let mut v = x;
        Activation::Hardswish.apply(&mut v, 0.0);
        for (g, w) in v.iter().zip(swish) {
            assert_eq!(g.to_bits(), w.to_bits(), "Hardswish: {v:?}");
        }
        assert!(v[7].is_nan(), "Hardswish(-inf) is NaN in torch (-inf · 0)");
        let mut v = x;
        Activation::Hardsigmoid.apply(&mut v, 0.0);
        for (g, w) in v.iter().zip(sigmoid) {
            assert_eq!(g.to_bits(), w.to_bits(), "Hardsigmoid: {v:?}");
        }
    }

    #[test]
    fn shrinks_and_rrelu_are_torch_float32_bit_for_bit() {
        // Printed by torch 2.15 (float32, RReLU in eval mode).
        let x = [-1.5f32, -0.5, -0.25, 0.0, 0.5, 0.75, 2.0, f32::INFINITY, -3.4e38];
        let cases = [
            (
                Activation::Hardshrink,
                [-1.5f32, 0.0, 0.0, 0.0, 0.0, 0.75, 2.0, f32::INFINITY, -3.4e38],
            ),
            (
                Activation::Softshrink,
                [-1.0, -0.0, -0.0, 0.0, 0.0, 0.25, 1.5, f32::INFINITY, -3.4e38],
            ),
            (
                Activation::RReLU,
                [
                    -0.343_75,
                    f32::from_bits(0xbdea_aaab), // -0.114583336
                    f32::from_bits(0xbd6a_aaab), // -0.057291668
                    0.0,
                    0.5,
                    0.75,
                    2.0,
                    f32::INFINITY,
                    f32::from_bits(0xfe6a_78d1), // -7.791667e37
                ],
            ),
        ];
        for (activation, want) in cases {
            let mut v = x;
            activation.apply(&mut v, 0.0);
            for (g, w) in v.iter().zip(want) {
                assert_eq!(g.to_bits(), w.to_bits(), "{activation}: {v:?} want {want:?}");
            }
            let mut nan = [f32::NAN];
            activation.apply(&mut nan, 0.0);
            assert!(nan[0].is_nan(), "{activation} keeps NaN");
        }
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (3.0, 0.999_977_909_503_001_4),
        ] {
            assert!((erf(x) - want).abs() < 1e-15, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 1e-15);
        }
    }
}
