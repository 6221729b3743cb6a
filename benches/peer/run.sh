#!/usr/bin/env bash
# restake-mc against the numpy peer in one go: installs the pinned numpy (once), builds
# restake-mc in release mode, and runs compare.py with any arguments given.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || ./install.sh
(cd ../.. && cargo build --release --locked -q)
exec .venv/bin/python compare.py "$@"
