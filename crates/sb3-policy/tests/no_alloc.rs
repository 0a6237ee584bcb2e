//! `predict_into` and `predict_recurrent_into` allocate nothing: a counting global allocator
//! sees no allocation across many calls, for every kind of network (MLP, NatureCNN, Dict with
//! an image, LSTM, QR-DQN, VecNormalize).
//!
//! This binary holds a single test, so no other test thread allocates while it counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// The one `unsafe` here: implementing `GlobalAlloc` is an unsafe trait by definition. The
// implementation only forwards to the system allocator, unchanged, and counts the calls.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pth_reader::Options;
use sb3_format::{Model, VecNormalize};
use sb3_policy::{JsonObservation, Policy};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards its arguments to `System`, which upholds the contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same layout, same contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same layout, same contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn prediction_allocates_nothing() {
    let models = [
        ("sb3/ppo_cartpole.zip", None),
        ("sb3/sac_pendulum.zip", None),
        ("policies/ppo_cnn.zip", None),
        ("policies/ppo_dict_image.zip", None),
        ("policies/qrdqn_box.zip", None),
        ("policies/ppo_multidiscrete.zip", None),
        ("policies/recurrent_ppo_dict.zip", None),
        (
            "policies/ppo_vecnorm_dict.zip",
            Some("policies/ppo_vecnorm_dict.vecnormalize.pkl"),
        ),
    ];
    let manifest = test_support::load_json(&test_support::fixture("policies/expected.json"));
    let sb3_manifest = test_support::load_json(&test_support::fixture("sb3/expected.json"));
    for (file, vecnormalize) in models {
        let model = Model::open(test_support::fixture(file), &Options::default().lenient(true)).unwrap();
        let stats = vecnormalize.map(|v| VecNormalize::open(test_support::fixture(v), &Options::default()).unwrap());
        let policy = Policy::from_model(&model, stats.as_ref()).unwrap();
        let entry = manifest["models"]
            .as_array()
            .unwrap()
            .iter()
            .chain(sb3_manifest["models"].as_array().unwrap())
            .find(|e| e["file"] == file)
            .unwrap();
        let obs = JsonObservation::parse(&entry["predict"][0]["obs"], policy.observation_space()).unwrap();
        let (mut scratch, mut action, mut state) = (policy.scratch(), policy.new_action(), policy.initial_state());
        obs.with(|obs| {
            // Warm up (lazy statics such as CPU-feature detection), then count.
            let mut run = |step: usize| {
                if policy.is_recurrent() {
                    policy
                        .predict_recurrent_into(obs, &mut state, step == 0, &mut scratch, &mut action)
                        .unwrap();
                } else {
                    policy.predict_into(obs, &mut scratch, &mut action).unwrap();
                }
            };
            run(0);
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for step in 1..200 {
                run(step);
            }
            let after = ALLOCATIONS.load(Ordering::SeqCst);
            assert_eq!(
                after - before,
                0,
                "{file}: {} allocations in 199 predictions",
                after - before
            );
        });
        // The counter does see allocations: `predict` makes its own scratch and action.
        if !policy.is_recurrent() {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            obs.with(|obs| policy.predict(obs)).unwrap();
            assert!(
                ALLOCATIONS.load(Ordering::SeqCst) > before,
                "{file}: the counter saw nothing"
            );
        }
    }
}
