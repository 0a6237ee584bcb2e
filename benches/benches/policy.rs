//! sb3-policy speed (issue 7): single-observation latency, a batch of 10,000 and open + build,
//! for PPO CartPole-v1 (64×64 tanh) and SAC HalfCheetah-v3 (256×256 relu) from the corpus, and
//! a NatureCNN PPO policy on one 84×84×4 frame (`target/bench-inputs/`, written by
//! `fixtures/generate.py --onnx`). With `--features tract`, tract runs the same actors from
//! their ONNX graphs beside them.
//!
//! ```sh
//! cargo bench -p pth-benches --bench policy
//! cargo bench -p pth-benches --bench policy --features tract
//! ```
//!
//! Timings are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): on the shared
//! 2-core machines this project runs on, other processes would otherwise inflate wall-clock
//! times by 2–4x; on an idle machine the two agree.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Throughput};
use pth_benches::{bench_input, corpus_model, frame, observations, PPO_CARTPOLE, SAC_HALFCHEETAH};
use sb3_policy::{Observation, Policy, Values};

const BATCH: usize = 10_000;

type Criterion = criterion::Criterion<ThreadCpuTime>;

/// Criterion measurement: the current thread's CPU time.
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }
    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Formats nanoseconds as ns/µs/ms/s and throughputs as elements per second.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(&self, typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let per_iteration = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            _ => 1.0,
        };
        // values are ns per iteration: elements per second = n · 1e9 / ns.
        let rate = per_iteration * 1e9 / typical.max(1e-9);
        let (factor, unit) = match rate {
            r if r < 1e3 => (1.0, "elem/s"),
            r if r < 1e6 => (1e-3, "Kelem/s"),
            _ => (1e-6, "Melem/s"),
        };
        values
            .iter_mut()
            .for_each(|v| *v = per_iteration * 1e9 / v.max(1e-9) * factor);
        unit
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn mlp(c: &mut Criterion, name: &str, path: &Path) {
    let policy = Policy::open(path).unwrap();
    let columns = match policy.observation_space() {
        sb3_format::Space::Box(b) => b.shape().iter().product(),
        _ => 1,
    };
    let mut group = c.benchmark_group(format!("policy/{name}"));
    let one = observations(1, columns);
    let row = one.as_slice().unwrap();
    let (mut scratch, mut action) = (policy.scratch(), policy.new_action());
    group.bench_function("single", |b| {
        b.iter(|| {
            let obs = Observation::Box(Values::F32(black_box(row)));
            policy.predict_into(&obs, &mut scratch, &mut action).unwrap();
        })
    });
    let batch = observations(BATCH, columns);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::new("batch", BATCH), |b| {
        b.iter(|| policy.predict_batch(black_box(batch.view())).unwrap())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("open_build", |b| b.iter(|| Policy::open(black_box(path)).unwrap()));
    group.finish();
}

fn nature_cnn(c: &mut Criterion, path: &Path) {
    let policy = Policy::open(path).unwrap();
    let mut group = c.benchmark_group("policy/nature_cnn");
    group.sample_size(30);
    let pixels = frame();
    let (mut scratch, mut action) = (policy.scratch(), policy.new_action());
    group.bench_function("single", |b| {
        b.iter(|| {
            // Channel-last, as the environment gives it: transposed as SB3's maybe_transpose does.
            let obs = Observation::Shaped(Values::U8(black_box(&pixels)), &[84, 84, 4]);
            policy.predict_into(&obs, &mut scratch, &mut action).unwrap();
        })
    });
    group.bench_function("open_build", |b| b.iter(|| Policy::open(black_box(path)).unwrap()));
    group.finish();
}

#[cfg(feature = "tract")]
mod tract_baseline {
    use super::*;
    use tract_onnx::prelude::*;

    type Plan = std::sync::Arc<TypedSimplePlan>;

    fn load(path: &Path, shape: &[usize], uint8: bool) -> Plan {
        let fact = if uint8 { u8::fact(shape) } else { f32::fact(shape) };
        tract_onnx::onnx()
            .model_for_path(path)
            .unwrap()
            .with_input_fact(0, fact.into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap()
    }

    /// `rows` observations as a tensor of `[rows, *shape]` (uint8 images: pixel values).
    fn input(rows: usize, shape: &[usize], uint8: bool) -> Tensor {
        let dims = [&[rows], shape].concat();
        let values = observations(rows, shape.iter().product()).into_raw_vec_and_offset().0;
        if uint8 {
            let pixels: Vec<u8> = values.iter().map(|v| ((v + 1.0) * 127.0) as u8).collect();
            tract_ndarray::Array::from_shape_vec(dims, pixels).unwrap().into()
        } else {
            tract_ndarray::Array::from_shape_vec(dims, values).unwrap().into()
        }
    }

    /// tract on the actor-only ONNX graph: one observation, a batch, and load + optimise.
    pub fn bench(c: &mut Criterion, name: &str, onnx: &Path, shape: &[usize], batch: usize, uint8: bool) {
        let mut group = c.benchmark_group(format!("tract/{name}"));
        group.sample_size(20);
        let one = load(onnx, &[&[1], shape].concat(), uint8);
        let x = input(1, shape, uint8);
        group.bench_function("single", |b| {
            b.iter(|| one.run(tvec!(black_box(x.clone()).into())).unwrap())
        });
        let many = load(onnx, &[&[batch], shape].concat(), uint8);
        let xb = input(batch, shape, uint8);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("batch", batch), |b| {
            b.iter(|| many.run(tvec!(black_box(xb.clone()).into())).unwrap())
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function("open_build", |b| {
            b.iter(|| load(black_box(onnx), &[&[1], shape].concat(), uint8))
        });
        group.finish();
    }
}

fn policies(c: &mut Criterion) {
    if let Some(path) = corpus_model(PPO_CARTPOLE) {
        mlp(c, "ppo_cartpole", &path);
    }
    if let Some(path) = corpus_model(SAC_HALFCHEETAH) {
        mlp(c, "sac_halfcheetah", &path);
    }
    if let Some(path) = bench_input("nature_cnn_ppo.zip") {
        nature_cnn(c, &path);
    }
    #[cfg(feature = "tract")]
    {
        for (name, shape, batch, uint8) in [
            ("ppo_cartpole", &[4usize][..], BATCH, false),
            ("sac_halfcheetah", &[17][..], BATCH, false),
            ("nature_cnn_ppo", &[4, 84, 84][..], 16, true),
        ] {
            if let Some(onnx) = bench_input(&format!("{name}.onnx")) {
                tract_baseline::bench(c, name, &onnx, shape, batch, uint8);
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = criterion::Criterion::default().with_measurement(ThreadCpuTime);
    targets = policies
}
criterion_main!(benches);
