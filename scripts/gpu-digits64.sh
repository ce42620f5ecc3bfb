#!/usr/bin/env bash
# The served digits recipe's four legs at 64x64 (configs/digits64-srbvae-{a,b,c,d}-cpu.toml) with
# the 32x32 recipe's wider first stage, on one GPU, then the evaluation against the served `digits`.
#   scripts/gpu-digits64.sh [MINUTES] [MNIST_DIR]
# MINUTES (default 10) bounds the training wall time from step 0 across the legs (each leg stops,
# saving, once it is spent). On two CPU cores these widths cost 3.4-4.5 s a step (about 10-12
# hours for the 10,000 steps); the configs' narrower 16-channel stage, 1.4 s, reads scale at .069.
# At these widths the configs' generator adversarial balance, 0.03, blacked out the generator
# within 500 steps on CPU; 0.01 trains. The later legs' swap weight, 40 in the configs, took e's
# colour out of the second leg's transfers at 2,450 steps, still gone when stopped at 2,576; at
# 20 they lost it at 3,000 and had it back by 3,100 (docs/experiments.md: watch reach/e and the transfer grids).
# Environment: BASE_CHANNELS (default 32), BALANCE (default 0.01), SWAP (the later legs' swap
# weight, default 20), LEG_STEPS (the legs' last
# steps instead of the configs'; a dry run on CPU: LEG_STEPS="4 8 12 16"), RUN_PREFIX (default
# digits64w), PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
mnist=${2:-}
py=${PYTHON:-.venv/bin/python}
width=${BASE_CHANNELS:-32}
balance=${BALANCE:-0.01}
swap=${SWAP:-20}
prefix=${RUN_PREFIX:-digits64w}
read -r -a ends <<<"${LEG_STEPS:-}"
[ "${#ends[@]}" -eq 0 ] || [ "${#ends[@]}" -eq 4 ] ||
    { echo "LEG_STEPS needs four steps, one per leg" >&2; exit 2; }

data=data/digits-64
if [ ! -f "$data/meta.json" ]; then
    "$py" -m training data digits --resolution 64 --out "$data" ${mnist:+--mnist-dir "$mnist"} --no-progress
fi

previous=""
legs=(a b c d)
for i in 0 1 2 3; do
    leg=${legs[$i]}
    # Each leg continues the one before from its state, as in the CPU configs.
    extra=()
    [ -n "$previous" ] && extra+=(--set run.init_from="runs/$previous/state" --set objective.swap_weight="$swap")
    [ "${#ends[@]}" -eq 4 ] && extra+=(--set run.steps="${ends[$i]}")
    "$py" -m training train --config "configs/digits64-srbvae-$leg-cpu.toml" \
        --set run.name="$prefix-$leg" --set model.base_channels="$width" \
        --set objective.adversarial_balance="$balance" \
        --set run.time_limit_minutes="$minutes" --set run.log_every=500 "${extra[@]}"
    previous="$prefix-$leg"
done
"$py" -m training evaluate --checkpoint "runs/$previous/export" \
    --baseline models/digits/evaluation.json
