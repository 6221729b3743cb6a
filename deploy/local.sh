#!/usr/bin/env bash
# A sharded restake-mc job on one machine, or on several sharing a folder: K shards run
# P at a time with xargs, then the merge. Useful to split a long run into pieces that
# can be restarted one by one.
#
#   deploy/local.sh SHARDS PARALLEL PARTIALS OUT -- run|batch|sweep ARGS...
#   e.g. deploy/local.sh 8 2 /tmp/p reports/big -- run --paths 100000000 --seed 42
set -euo pipefail
if [[ $# -lt 6 || $5 != "--" ]]; then
  echo "usage: $0 SHARDS PARALLEL PARTIALS OUT -- run|batch|sweep ARGS..." >&2
  exit 2
fi
shards=$1 parallel=$2 partials=$3 out=$4
shift 5
bin="${RESTAKE_MC:-restake-mc}"
mkdir -p "$partials"
seq 0 $((shards - 1)) | xargs -P "$parallel" -I{} \
  "$bin" "$@" --quiet --threads 1 --shard-index {} --shard-count "$shards" \
  --partial "$partials/shard-{}.part"
"$bin" merge "$partials"/shard-*.part --out "$out"
