#!/usr/bin/env bash
# restake-mc against the numpy and numba peers in one go: installs the pinned numpy and
# numba (once), builds restake-mc in release mode, and runs compare.py with any
# arguments given (paths in them relative to the folder it is called from).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
{ [ -x "$here/.venv/bin/python" ] && "$here/.venv/bin/python" -c 'import numba' 2>/dev/null; } ||
  "$here/install.sh"
(cd "$here/../.." && cargo build --release --locked -q)
exec "$here/.venv/bin/python" "$here/compare.py" "$@"
