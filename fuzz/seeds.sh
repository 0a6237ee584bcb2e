#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from the project's fixtures and the shared corpus:
#   fuzz/corpus/<target>/  (not committed; rebuilt by this script, grown by the fuzzer)
# Needs only coreutils and unzip (to pull data.pkl out of archives for the pickle target; skipped without it).
#   fuzz/seeds.sh            # all targets
#   fuzz/seeds.sh pickle     # one
set -euo pipefail
cd "$(dirname "$0")"
ROOT=..
SHARED=${PTH_CORPUS:-../../shared/corpus}
MAX=$((1024 * 1024))   # seeds over 1 MiB slow every run down; leave them out

# copy SRC... into DIR (named by content hash, so reruns dedupe), skipping large files
seed() {
  local dir=$1; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le $MAX ] || continue
    cp "$f" "$dir/$(sha1sum "$f" | cut -c1-16)"
  done
}

torch_files() {
  find "$ROOT/fixtures/torch" "$ROOT/fixtures/hostile" "$ROOT/fixtures/differential" \
    -type f \( -name '*.pt' -o -name '*.pth' -o -name '*.pkl' \) 2>/dev/null
  [ -d "$SHARED" ] && find "$SHARED/gopickle" "$SHARED/burn" -type f \( -name '*.pt' -o -name '*.pth' \) 2>/dev/null
  true
}

checkpoint() { seed corpus/checkpoint $(torch_files); }

pickle() {
  seed corpus/pickle $(find "$ROOT/fixtures/pickles" -type f -name '*.pkl')
  if command -v unzip >/dev/null; then
    local tmp; tmp=$(mktemp -d)
    local i=0
    for f in $(torch_files); do
      i=$((i + 1))
      unzip -p "$f" '*/data.pkl' > "$tmp/$i.pkl" 2>/dev/null || rm -f "$tmp/$i.pkl"
      [ -s "$tmp/$i.pkl" ] || rm -f "$tmp/$i.pkl"
    done
    seed corpus/pickle "$tmp"/*.pkl
    rm -rf "$tmp"
  else
    echo "seeds.sh: no unzip: the pickle corpus has only fixtures/pickles" >&2
  fi
}

sb3_model() {
  seed corpus/sb3_model $(find "$ROOT/fixtures/sb3" -type f \( -name '*.zip' -o -name '*.pkl' \))
  # a few real models of each algorithm (small ones), and their VecNormalize files
  [ -d "$SHARED/rl-trained-agents" ] && seed corpus/sb3_model \
    $(find "$SHARED/rl-trained-agents" "$SHARED/sb3-generated" -type f \( -name '*.zip' -o -name '*.pkl' \) \
      -size -200k 2>/dev/null | sort | awk 'NR % 4 == 1')
  true
}

# The structure-aware targets read their bytes with `arbitrary`: any bytes are a valid start, and the torch files
# give the fuzzer varied material; libFuzzer finds the structure from there.
structured() { seed corpus/structured $(torch_files | sort | awk 'NR % 3 == 0'); }
differential() { seed corpus/differential $(find "$ROOT/fixtures/pickles" -type f -name '*.pkl'); }
# The round trip reads what the checkpoint target reads, then writes and re-reads it.
roundtrip() { seed corpus/roundtrip $(torch_files); }

targets=${*:-checkpoint pickle sb3_model structured differential roundtrip}
for t in $targets; do
  "$t"
  echo "corpus/$t: $(find corpus/$t -type f | wc -l) seeds"
done
