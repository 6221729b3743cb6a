#!/usr/bin/env bash
# CI's Slurm step: on a running cluster (single-host-cluster.sh), submits a 4-task
# array of the default scenario and its dependent merge through submit.sh, waits for
# both, and compares every CSV of the merged folder with a one-machine run of the same
# seed and paths, byte for byte. Exits non-zero on any difference or failed job.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${RESTAKE_MC:?the restake-mc binary}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
paths=${PATHS:-600000}
seed=${SEED:-7}
cd "$work"
read -r array merge < <(RESTAKE_MC="$bin" "$here/submit.sh" 4 "$work/partials" "$work/merged" -- \
  run --paths "$paths" --seed "$seed")
echo "slurm: shard array $array, merge $merge (afterok)"
"$bin" run --paths "$paths" --seed "$seed" --out "$work/single" --quiet
deadline=$((SECONDS + 170))
while [[ -n $(squeue -h -j "$array,$merge" 2>/dev/null) ]]; do
  if ((SECONDS > deadline)); then
    echo "slurm: jobs still queued after 170 s" >&2
    squeue >&2
    exit 1
  fi
  sleep 1
done
state=$(scontrol show job "$merge" | grep -o 'JobState=[A-Z_]*')
if [[ $state != JobState=COMPLETED ]]; then
  echo "slurm: merge job $merge ended with $state" >&2
  cat "$work"/slurm-*.out >&2 || true
  exit 1
fi
ls "$work/partials"
n=0
for f in "$work"/single/*.csv; do
  cmp "$f" "$work/merged/$(basename "$f")"
  n=$((n + 1))
done
echo "slurm: 4 shards merged = one-machine run: $n CSVs identical byte for byte"
