//! Runtime CPU-feature dispatch for the single-observation kernels.
//!
//! The kernels are plain Rust loops written to vectorise. [`Simd::run`] compiles them (by
//! inlining) into a function built for the best instruction set the CPU has — AVX2 with FMA
//! on x86-64 when present — chosen once when the policy is built. `pulp` does the dispatch in
//! safe code, so this crate needs no `unsafe`.

/// The instruction set chosen for this CPU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Simd {
    arch: pulp::Arch,
}

impl Simd {
    /// Detects the best instruction set of this CPU.
    pub fn detect() -> Simd {
        Simd {
            arch: pulp::Arch::new(),
        }
    }

    /// Runs `kernel` compiled for the detected instruction set.
    #[inline(always)]
    pub fn run<R>(self, kernel: impl FnOnce() -> R) -> R {
        // Callers mark their closures `#[inline(always)]`, so the kernel body is compiled
        // inside pulp's target-feature function.
        self.arch.dispatch(kernel)
    }
}

/// `acc + a·b`, rounded twice (no fused multiply-add): torch's kernels overflow on the
/// product as this does, so observations near the float32 limits (sampled from spaces with
/// bounds of ±3.4e38) give the same infinities and NaNs, and the same argmax.
#[inline(always)]
pub(crate) fn madd(a: f32, b: f32, acc: f32) -> f32 {
    acc + a * b
}
