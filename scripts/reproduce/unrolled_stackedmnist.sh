#!/usr/bin/env bash
# Metz, Poole, Pfau, Sohl-Dickstein, "Unrolled Generative Adversarial Networks" (ICLR 2017), Table 2: modes generated
# (out of 1,000) and KL on stacked MNIST for a discriminator 1/4 and 1/2 the generator's size, unrolled 0, 1, 5 and 10
# steps (conf/experiment/stackedmnist_unrolled.yaml; 0 steps = stackedmnist_plain), SEEDS seeds each, then
# `gan-bench report`. Targets (as I recall the table, check the PDF): 1/2-size D 628.0 modes (0 steps) -> 817.4 (10);
# 1/4-size D 30.6 -> 327.2. Trains gan-bench's MNIST LeNet first if it is not there.
#
#   scripts/reproduce/unrolled_stackedmnist.sh [ITERATIONS=50000] [OUT=multirun/unrolled_stackedmnist] [JOBS=1]
#       [SEEDS=1,2,3] [METRIC=modes_covered_stacked]
set -euo pipefail
ITERATIONS=${1:-50000}
OUT=${2:-multirun/unrolled_stackedmnist}
JOBS=${3:-1}
SEEDS=${4:-1,2,3}
METRIC=${5:-modes_covered_stacked}
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
# estimates, not measurements: launch-bound, ~5 ms per plain iteration and ~5 ms more per unrolling step
GPU_HOURS=$(python3 -c "print(round(2 * ${N_SEEDS} * ${ITERATIONS} * 0.005 * (1 + 2 + 6 + 11) / 3600, 1))")
echo "unrolled_stackedmnist: D width 16, 32 x unroll steps 0, 1, 5, 10 x seeds ${SEEDS}, ${ITERATIONS} iterations each"
echo "  -> ${OUT}; estimated (not measured): about ${GPU_HOURS} GPU hours on one H100/H200-class GPU (${JOBS} at a time)"
[ -f classifiers/mnist_28px_lenet.pt ] || gan-bench classifier train dataset=mnist

LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
gan-bench train -m +experiment=stackedmnist_unrolled stabilizers.unrolled.steps=0,1,5,10 \
    model.discriminator.width=16,32 "train.seed=${SEEDS}" "train.iterations=${ITERATIONS}" \
    "hydra.sweep.dir=${OUT}" "${LAUNCHER[@]}" || echo "some jobs failed: see the report"
gan-bench report "$OUT" --metric "$METRIC" --force
