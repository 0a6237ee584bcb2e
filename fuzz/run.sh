#!/usr/bin/env bash
# Runs fuzz targets over their seed corpora with the project's bounds (2 GiB RSS, 10 s per input, the pickle
# dictionary) and prints each target's executions.
#   fuzz/run.sh SECONDS [TARGET...]       # all six targets when none is named
#   FUZZ_KEEP_GOING=1 fuzz/run.sh 600     # campaign: fork mode, keep going after a crash, OOM or timeout
# Crashes are written by libFuzzer to fuzz/artifacts/<target>/; minimise one with
#   cargo +nightly fuzz tmin <target> fuzz/artifacts/<target>/<file>
# and keep it in fuzz/regressions/<target>/ (cargo test replays that folder).
# Exits non-zero if any target found a crash. Needs `cargo +nightly` and cargo-fuzz; run fuzz/seeds.sh first.
set -uo pipefail
cd "$(dirname "$0")"
secs=$1
shift
targets=${*:-checkpoint pickle sb3_model structured differential roundtrip}
opts=(-dict=pickle.dict -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
  opts+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
fi
status=0
for t in $targets; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  cargo +nightly fuzz run "$t" "corpus/$t" -- "${opts[@]}" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s += $2} END {print s}')
  [ -n "$execs" ] && [ "$execs" != 0 ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  # A slow unit (an input slower than -report_slow_units under a loaded machine) is not a finding:
  # a real hang is a timeout (-timeout=10), written as timeout-*.
  crashes=$(grep 'Test unit written\|^INFO: .*crash-\|==ERROR' "$log" | grep -vc 'slow-unit-')
  echo "fuzz $t: ${secs} s, ${execs:-?} executions, corpus $(find "corpus/$t" -type f | wc -l), exit $rc"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    grep -E '==ERROR|panicked at|^SUMMARY|Test unit written|out-of-memory|timeout' "$log" | sort | uniq -c | head -20
  fi
  rm -f "$log"
done
exit $status
