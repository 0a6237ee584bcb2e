#!/usr/bin/env bash
# Whole-process figures of issue 10: wall time and peak resident memory (`/usr/bin/time -v`'s
# "Maximum resident set size") of `pth ls`, `pth ls --json`, `pth convert` to .safetensors beside
# `cp` of the same file, and of opening the 1 GiB archive without reading a tensor.
#
#   benches/process.sh [RUNS]      # RUNS per row (default 5): the median wall time, the largest peak RSS
#
# Inputs: target/bench-inputs/ (written by the project's writer, `--example bench_inputs`, if
# absent); outputs in target/bench-out/. Files are read once before timing (page cache warm), so
# `cp` and `pth convert` are compared on equal terms.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
cargo build --quiet --release -p pth-cli
cargo build --quiet --release -p pth-benches --example bench_inputs --example open
mapfile -t inputs < <(target/release/examples/bench_inputs)
small="${inputs[0]}" big="${inputs[1]}"
out=target/bench-out
mkdir -p "$out"
cat "$small" "$big" > /dev/null

# row LABEL COMMAND...: median wall seconds and largest peak RSS (MB) over $runs runs.
row() {
    local label="$1"; shift
    local walls=() peak=0 stats
    for _ in $(seq "$runs"); do
        stats=$(mktemp)
        /usr/bin/time -f "%e %M" -o "$stats" "$@" > /dev/null
        read -r wall rss < "$stats"
        rm -f "$stats"
        walls+=("$wall")
        (( rss > peak )) && peak=$rss
    done
    local median
    median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '| %-52s | %11.2f s | %9.1f MB |\n' "$label" "$median" "$(echo "$peak / 1024" | bc -l)"
}

printf '| %-52s | %13s | %12s |\n' "process ($runs runs)" "wall (median)" "peak RSS"
printf '|%s|%s|%s|\n' "------------------------------------------------------" "---------------" "--------------"
row "pth ls --json, 20k tensors" target/release/pth ls --json "$small"
row "pth ls, 20k tensors" target/release/pth ls "$small"
row "open + index without reading tensors, 20k tensors" target/release/examples/open "$small"
row "open + index without reading tensors, 1 GiB" target/release/examples/open "$big"
row "pth convert 1 GiB to .safetensors" target/release/pth convert "$big" "$out/converted.safetensors" --force
row "cp of the 1 GiB archive" cp "$big" "$out/cp.pt"
rm -f "$out/converted.safetensors" "$out/cp.pt"
