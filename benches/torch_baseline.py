#!/usr/bin/env python3
"""Python baselines for sb3-policy's benches (issue 7 "Speed"): SB3 predict, torch's forward pass and onnxruntime on
the same three policies, in the same run.

    .venv/bin/python fixtures/generate.py --onnx        # once: ONNX graphs + NatureCNN zip in target/bench-inputs
    .venv/bin/python benches/torch_baseline.py          # both thread settings, Markdown tables
    .venv/bin/python benches/torch_baseline.py --threads 1 --json target/torch_baseline.json
    .venv/bin/python benches/torch_baseline.py --threads 1 --clock thread   # CPU time, as pth-benches measures

Models (fixtures/bench_inputs.py): PPO CartPole-v1 (64x64 tanh) and SAC HalfCheetah-v3 (256x256 relu) from the corpus'
rl-trained-agents, and a PPO NatureCNN policy (features_dim 512, Discrete(6)) on 84x84x4 uint8 frames built with seed 0.
What is timed, each a median over rounds:
  SB3 predict     model.predict(obs, deterministic=True), one observation as numpy (an 84x84x4 channel-last frame for
                  the CNN, which SB3 transposes); batch: one call on the whole batch
  torch forward   the actor-only module alone (fixtures/bench_inputs.py `actor`: features -> policy net -> action head
                  -> argmax / tanh) under torch.no_grad() on a ready channel-first tensor
  onnxruntime     the same actor exported to ONNX (`generate.py --onnx`), InferenceSession.run on a numpy input
  load            SB3 Algo.load(zip) (the corpus zips with gymnasium spaces from the corpus manifest); onnxruntime
                  InferenceSession(path)
Batches: 10,000 observations (MLP), 256 frames (CNN: 10,000 frames would be 1.1 GB as float32).
Threads: "1" = torch.set_num_threads(1) and onnxruntime intra/inter_op_num_threads = 1; "default" = torch's and
onnxruntime's defaults (all cores).

Measured 2026-12-02 on the project machine: AMD EPYC, 2 vCPUs shared with four engineers compiling, load average
6-9 during every run.
Thread CPU time (`--threads 1 --clock thread`, the clock pth-benches uses), 2 runs:
| model | SB3 predict 1 obs | torch forward 1 obs | onnxruntime 1 obs | SB3 batch | torch batch | onnxruntime batch |
| SB3 load | onnxruntime load |   (one row per model below; the header is split here to fit)
| ppo_cartpole | 122 / 127 µs | 32.5 / 33.1 µs | 5.7 / 5.5 µs | 1.34M / 1.20M obs/s | 2.07M / 2.18M obs/s |
  10.2M / 8.84M obs/s | 7.7 / 9.3 ms | 0.8 / 1.1 ms |
| sac_halfcheetah | 145 / 144 µs | 33.1 / 37.0 µs | 8.2 / 7.7 µs | 493k / 505k obs/s | 579k / 547k obs/s |
  947k / 845k obs/s | 22.1 / 23.7 ms | 0.7 / 0.7 ms |
| nature_cnn_ppo | 737 / 1100 µs | 494 / 702 µs | 165 / 183 µs | 6.26k / 3.96k obs/s | 6.42k / 3.93k obs/s |
  9.69k / 8.95k obs/s | 81.6 / 86.2 ms | 4.5 / 5.1 ms |
Wall clock (the default), threads 1, medians of 3 runs (each figure a median over rounds); other jobs' time is
counted, so these are 1.5-3x the CPU times:
| ppo_cartpole | 258 µs | 82.9 µs | 14.1 µs | 448k obs/s | 542k obs/s | 4.04M obs/s | 21.2 ms | 0.64 ms |
| sac_halfcheetah | 414 µs | 87.1 µs | 22.2 µs | 194k obs/s | 237k obs/s | 359k obs/s | 62.8 ms | 0.88 ms |
| nature_cnn_ppo | 2363 µs | 1464 µs | 372 µs | 1.92k obs/s | 2.28k obs/s | 3.98k obs/s | 232 ms | 11.0 ms |
Default threads (torch 2, wall clock) on this loaded machine is worse, not better: torch's threads wait for each
other (nature_cnn_ppo SB3 predict 82 ms median, SB3 batch of ppo_cartpole 178k obs/s); onnxruntime's
single-observation times are unchanged.
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import stable_baselines3  # noqa: E402
import torch  # noqa: E402

import bench_inputs  # noqa: E402

DEFAULT_TORCH_THREADS = torch.get_num_threads()
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}  # thread: CLOCK_THREAD_CPUTIME_ID, as pth-benches
clock = time.perf_counter
BATCH = {"ppo_cartpole": 10_000, "sac_halfcheetah": 10_000, "nature_cnn_ppo": 256}


def median_per_call(fn, rounds, round_seconds):
    """Median over `rounds` rounds of the mean time of one call; a round repeats fn for about round_seconds.
    Returns (median, fastest round)."""
    fn()
    t = clock()
    fn()
    once = max(clock() - t, 1e-7)
    calls = max(1, int(round_seconds / once))
    per_call = []
    for _ in range(rounds):
        t = clock()
        for _ in range(calls):
            fn()
        per_call.append((clock() - t) / calls)
    return statistics.median(per_call), min(per_call)


def median_once(fn, rounds):
    """Median and fastest of `rounds` timed single calls."""
    times = []
    for _ in range(rounds):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times), min(times)


def session(path, threads):
    so = ort.SessionOptions()
    if threads == "1":
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def bench_model(name, inputs, threads, rounds, round_seconds):
    custom = bench_inputs.custom_objects(name)
    model = bench_inputs.load(name, inputs, custom)
    module = bench_inputs.actor(model)
    onnx_path = inputs / f"{name}.onnx"
    sess = session(onnx_path, threads)
    one = bench_inputs.sample_observations(model, 1, 0)
    batch = bench_inputs.sample_observations(model, BATCH[name], 1)
    x1 = bench_inputs.graph_input(model, one)
    xb = bench_inputs.graph_input(model, batch)
    t1, tb = torch.from_numpy(x1), torch.from_numpy(xb)
    # the three must agree before they are timed
    with torch.no_grad():
        want = np.asarray(module(t1))
    assert np.allclose(sess.run(None, {"obs": x1})[0], want, atol=1e-5), name

    def forward(t):
        with torch.no_grad():
            return module(t)

    r, best = {"batch": BATCH[name]}, {}
    few = max(3, rounds // 3)
    timings = {
        "sb3_load_ms": (1e3, median_once(lambda: bench_inputs.load(name, inputs, custom), few)),
        "onnxruntime_load_ms": (1e3, median_once(lambda: session(onnx_path, threads), few)),
        "sb3_predict_us": (1e6, median_per_call(lambda: model.predict(one[0], deterministic=True), rounds,
                                                round_seconds)),
        "torch_forward_us": (1e6, median_per_call(lambda: forward(t1), rounds, round_seconds)),
        "onnxruntime_us": (1e6, median_per_call(lambda: sess.run(None, {"obs": x1}), rounds, round_seconds)),
        "sb3_batch_obs_s": (None, median_once(lambda: model.predict(batch, deterministic=True), few)),
        "torch_batch_obs_s": (None, median_once(lambda: forward(tb), few)),
        "onnxruntime_batch_obs_s": (None, median_once(lambda: sess.run(None, {"obs": xb}), few)),
    }
    for key, (scale, (median, fastest)) in timings.items():
        # times scale to ms / µs; batch times become observations per second
        r[key], best[key] = (scale * median, scale * fastest) if scale else (BATCH[name] / median,
                                                                            BATCH[name] / fastest)
    r["fastest_round"] = best
    return r


def rate(x):
    """Three significant digits: 2.69M, 678k, 2.31k."""
    for scale, unit in ((1e6, "M"), (1e3, "k"), (1.0, "")):
        if x >= scale:
            v = x / scale
            return f"{v:.{max(0, 2 - int(math.log10(v)))}f}{unit}"
    return f"{x:.3g}"


def micros(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def table(threads, results):
    lines = [f"threads: {threads} (torch {torch.get_num_threads()}, onnxruntime "
             f"{'1' if threads == '1' else 'default'})",
             "| model | SB3 predict 1 obs | torch forward 1 obs | onnxruntime 1 obs | SB3 batch | torch batch "
             "| onnxruntime batch | SB3 load | onnxruntime load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(
            f"| {name} | {micros(r['sb3_predict_us'])} µs | {micros(r['torch_forward_us'])} µs | "
            f"{micros(r['onnxruntime_us'])} µs | {rate(r['sb3_batch_obs_s'])} obs/s | "
            f"{rate(r['torch_batch_obs_s'])} obs/s | {rate(r['onnxruntime_batch_obs_s'])} obs/s | "
            f"{r['sb3_load_ms']:.1f} ms | {r['onnxruntime_load_ms']:.1f} ms |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", choices=["1", "default", "both"], default="both")
    ap.add_argument("--inputs", default=str(ROOT / "target" / "bench-inputs"),
                    help="folder written by generate.py --onnx")
    ap.add_argument("--models", nargs="+", default=list(bench_inputs.MODELS), choices=list(bench_inputs.MODELS))
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--round-ms", type=float, default=40.0)
    ap.add_argument("--quick", action="store_true", help="5 rounds of 10 ms (a smoke run, not for the record)")
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall",
                    help="wall time, or this thread's CPU time (what pth-benches measures; needs --threads 1: "
                         "other threads' work would not be counted)")
    ap.add_argument("--json", metavar="PATH", help="also write every median as JSON")
    args = ap.parse_args()
    if args.clock == "thread" and args.threads != "1":
        sys.exit("--clock thread needs --threads 1")
    global clock
    clock = CLOCKS[args.clock]
    inputs = Path(args.inputs)
    missing = [n for n in args.models if not (inputs / f"{n}.onnx").exists()]
    if missing:
        sys.exit(f"no ONNX graphs for {missing} in {inputs}: run .venv/bin/python fixtures/generate.py --onnx")
    rounds, round_s = (5, 0.01) if args.quick else (args.rounds, args.round_ms / 1e3)
    out = {"torch": torch.__version__, "sb3": stable_baselines3.__version__, "onnxruntime": ort.__version__,
           "numpy": np.__version__, "python": platform.python_version(), "cpu": cpu_name(), "clock": args.clock,
           "results": {}}
    print(f"torch {torch.__version__}, SB3 {stable_baselines3.__version__}, onnxruntime {ort.__version__}, "
          f"{out['cpu']}, {args.clock} clock, medians\n")
    out["load_average_before"] = os.getloadavg()
    for threads in (["1", "default"] if args.threads == "both" else [args.threads]):
        torch.set_num_threads(1 if threads == "1" else DEFAULT_TORCH_THREADS)
        results = {n: bench_model(n, inputs, threads, rounds, round_s) for n in args.models}
        out["results"][threads] = results
        print(table(threads, results) + "\n", flush=True)
    out["load_average_after"] = os.getloadavg()
    print(f"load average (1, 5, 15 min): before {fmt_load(out['load_average_before'])}, "
          f"after {fmt_load(out['load_average_after'])} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


def fmt_load(avg):
    return ", ".join(f"{x:.2f}" for x in avg)


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
