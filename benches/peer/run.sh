#!/usr/bin/env bash
# restake-mc against the numpy and numba peers in one go: installs the pinned numpy and
# numba (once), builds restake-mc in release mode, and runs compare.py with any
# arguments given.
set -euo pipefail
cd "$(dirname "$0")"
{ [ -x .venv/bin/python ] && .venv/bin/python -c 'import numba' 2>/dev/null; } || ./install.sh
(cd ../.. && cargo build --release --locked -q)
exec .venv/bin/python compare.py "$@"
