#!/usr/bin/env bash
# Runs the fuzz targets (cargo fuzz, libFuzzer, AddressSanitizer; needs a nightly
# toolchain and `cargo install cargo-fuzz`), each for SECONDS (default 600), on a corpus
# seeded from data/scenarios: every preset as a scenario, and every preset's exported
# avs.csv and operators.csv (joined by a NUL byte) as an import. Prints libFuzzer's
# execution counts; a crash leaves its input under fuzz/artifacts/<target>/ and fails.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(scenario import)

mkdir -p fuzz/corpus/scenario fuzz/corpus/import
cp data/scenarios/*.toml fuzz/corpus/scenario/
cargo build --quiet --bin restake-mc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in data/scenarios/*.toml; do
  name=$(basename "$f" .toml)
  target/debug/restake-mc export "$f" --out "$tmp/$name" >/dev/null
  { cat "$tmp/$name/avs.csv"; printf '\0'; cat "$tmp/$name/operators.csv"; } \
    > "fuzz/corpus/import/$name"
done

for t in "${targets[@]}"; do
  (cd fuzz && cargo +nightly fuzz run -O "$t" -- -max_total_time="$seconds" -max_len=16384 \
    -print_final_stats=1 2>&1) | tee "$tmp/$t.log" | grep -E "^(#[0-9]+.*(DONE|pulse)|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  if grep -q "stat::number_of_executed_units" "$tmp/$t.log"; then
    echo "$t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$tmp/$t.log" | awk '{print $2}') executions in ${seconds} s, no crash"
  else
    tail -40 "$tmp/$t.log"
    echo "$t: crashed (see fuzz/artifacts/$t/)"
    exit 1
  fi
done
