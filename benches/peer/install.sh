#!/usr/bin/env bash
# Installs the peers' pinned dependencies (numpy, numba) into a virtual environment beside it
# (benches/peer/.venv), so that nothing outside the checkout changes.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -c "import numba, numpy; print('numpy', numpy.__version__, 'and numba', numba.__version__, 'installed in benches/peer/.venv')"
