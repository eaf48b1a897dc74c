#!/usr/bin/env bash
# The main job: set up, then upscale a real sample clip (with its audio) 4x with the default
# pretrained model (BasicVSR, REDS4), and compare it with bicubic. Extra arguments go to `vsrkit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
vsrkit demo "$@"
