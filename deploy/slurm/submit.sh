#!/usr/bin/env bash
# Submits a sharded restake-mc job to Slurm: a job array of SHARDS shards, then the
# merge with --dependency=afterok. Prints the two job ids ("ARRAY MERGE").
#
#   deploy/slurm/submit.sh SHARDS PARTIALS OUT -- JOB ARGS...
#   e.g. deploy/slurm/submit.sh 100 /shared/p reports/big -- run data/scenarios/etherfi-weeth.toml --paths 1000000000
#
# Extra sbatch options (partition, account, time) go in SBATCH_OPTIONS. The job's
# arguments go to every shard; --paths and --seed among them fix the run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -lt 5 || $4 != "--" ]]; then
  echo "usage: $0 SHARDS PARTIALS OUT -- run|batch|sweep ARGS..." >&2
  exit 2
fi
shards=$1 partials=$2 out=$3
shift 4
mkdir -p "$partials"
RESTAKE_MC="${RESTAKE_MC:-$(command -v restake-mc)}"
JOB_ARGS="$*"
PARTIALS="$(cd "$partials" && pwd)"
OUT="$(mkdir -p "$(dirname "$out")" && cd "$(dirname "$out")" && pwd)/$(basename "$out")"
export RESTAKE_MC JOB_ARGS PARTIALS OUT
# shellcheck disable=SC2086 # SBATCH_OPTIONS is a word list
array=$(sbatch --parsable ${SBATCH_OPTIONS:-} --export=ALL --array=0-$((shards - 1)) "$here/shard.sbatch")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_OPTIONS:-} --export=ALL --dependency=afterok:"$array" "$here/merge.sbatch")
echo "$array ${merge%%;*}"
