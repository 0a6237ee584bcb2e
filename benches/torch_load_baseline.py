#!/usr/bin/env python3
"""torch.load baselines for the reader benches (issue 10), on the archives `benches/benches/read.rs` writes into
target/bench-inputs/ with the project's own writer (run `cargo bench -p pth-benches --bench read` or
`cargo run --release -p pth-benches --example bench_inputs` first; missing inputs are skipped).

    .venv/bin/python benches/torch_load_baseline.py            # Markdown rows, wall clock, medians
    .venv/bin/python benches/torch_load_baseline.py --json target/torch_load_baseline.json

What is timed (each a median over rounds of about 0.5 s, after one untimed call; files in the page cache):
  load            torch.load(path, weights_only=True): every storage read into memory
  load mmap       torch.load(path, weights_only=True, mmap=True): storages mapped, not read
  bf16 -> f32     t.float() on each tensor of the 256 MiB bfloat16 archive (loaded once, mmap=True)
One thread (torch.set_num_threads(1)), as the Rust reader uses one. Not needed by any test or CI.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "target" / "bench-inputs"
CASES = [
    ("1_tensor", "1x350_float32.pt"),
    ("100_tensors", "100x350_float32.pt"),
    ("10k_tensors", "10000x350_float32.pt"),
    ("20k_tensors", "20000x350_float32.pt"),
    ("1GiB_64_tensors", "64x2048x2048_float32.pt"),
    ("legacy/20k_tensors", "20000x350_float32_legacy.pt"),
]


def median_seconds(fn, round_seconds=0.5, rounds=7):
    fn()
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    calls = max(1, int(round_seconds / once))
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls)
    return statistics.median(times)


def fmt(seconds):
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the figures (seconds) here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    print(f"torch {torch.__version__}, one thread, wall clock, medians")
    print("| case | torch.load | torch.load(mmap=True) |")
    print("|---|---|---|")
    for label, name in CASES:
        path = INPUTS / name
        if not path.exists():
            print(f"| {label} | (missing {name}) | |")
            continue
        path.read_bytes()  # into the page cache
        full = median_seconds(lambda: torch.load(path, weights_only=True))
        if label.startswith("legacy"):  # torch maps only zip archives
            results[label] = {"load": full}
            print(f"| {label} | {fmt(full)} | (refused for legacy files) |")
            continue
        mapped = median_seconds(lambda: torch.load(path, weights_only=True, mmap=True))
        results[label] = {"load": full, "load_mmap": mapped}
        print(f"| {label} | {fmt(full)} | {fmt(mapped)} |")
    bf16 = INPUTS / "16x4096x2048_bfloat16.pt"
    if bf16.exists():
        tensors = list(torch.load(bf16, weights_only=True, mmap=True).values())
        seconds = median_seconds(lambda: [t.float() for t in tensors], rounds=5)
        results["bf16_to_f32_256MiB"] = seconds
        print(f"| bf16 -> f32, 256 MiB in (t.float()) | {fmt(seconds)} | |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
