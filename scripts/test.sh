#!/usr/bin/env bash
# Set up, then run the whole test suite. Data from ../shared is used where present (tests that need
# it skip with a reason otherwise). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m pytest -q -rs "$@"
