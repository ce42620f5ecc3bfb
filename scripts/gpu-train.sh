#!/usr/bin/env bash
# The paper's setting on one GPU under a time limit, then the evaluation table and card.
#   scripts/gpu-train.sh digits|faces [MINUTES] [MNIST_DIR]
# Prepares data/digits-64 or data/faces-64-tight if missing (digits: MNIST from MNIST_DIR, else
# fetched; faces: rendered, tightly framed), trains configs/<dataset>-gpu.toml for MINUTES
# (default 7) of wall time, and evaluates runs/<dataset>-gpu/export with --write-card.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=${1:?usage: scripts/gpu-train.sh digits|faces [MINUTES] [MNIST_DIR]}
minutes=${2:-7}
mnist=${3:-}
py=${PYTHON:-.venv/bin/python}
case "$dataset" in
    digits) extra=(${mnist:+--mnist-dir "$mnist"}); data=data/digits-64 ;;
    faces) extra=(--zoom 1.8); data=data/faces-64-tight ;;  # the tight framing, docs/data.md
    *) echo "unknown dataset '$dataset': digits or faces" >&2; exit 2 ;;
esac

if [ ! -f "$data/meta.json" ]; then
    "$py" -m training data "$dataset" --resolution 64 --out "$data" "${extra[@]}" --no-progress
fi
"$py" -m training train --config "configs/$dataset-gpu.toml" \
    --set run.time_limit_minutes="$minutes" --set run.log_every=500
"$py" -m training evaluate --checkpoint "runs/$dataset-gpu/export" --write-card
