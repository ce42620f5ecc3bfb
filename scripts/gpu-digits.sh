#!/usr/bin/env bash
# The paper's digit-style setting on one GPU within about 10 minutes, then the evaluation table.
#   scripts/gpu-digits.sh [MINUTES] [MNIST_DIR]
# Prepares data/digits-64 if missing (MNIST from MNIST_DIR, else fetched), trains
# configs/digits-gpu.toml for MINUTES (default 7) of wall time, evaluates and writes the card.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-7}
mnist=${2:-}
py=${PYTHON:-.venv/bin/python}

if [ ! -f data/digits-64/meta.json ]; then
    "$py" -m training data digits --resolution 64 ${mnist:+--mnist-dir "$mnist"} --no-progress
fi
"$py" -m training train --config configs/digits-gpu.toml \
    --set run.time_limit_minutes="$minutes" --set run.log_every=500
"$py" -m training evaluate --checkpoint runs/digits-gpu/export --write-card
