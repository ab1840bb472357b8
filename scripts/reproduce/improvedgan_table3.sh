#!/usr/bin/env bash
# Salimans et al., "Improved Techniques for Training GANs" (NeurIPS 2016), Table 3 (Inception scores on CIFAR-10): the
# unconditional columns gan-bench can run, "-L+HA" (no labels, with historical averaging: cifar_improved, target IS
# 6.86 +- .06) and "-L" (no labels, no historical averaging: stabilizers.historical_averaging.weight=0, target 4.36 +- .04),
# plus the feature-matching model (cifar_improved_fm, no target), SEEDS seeds each, then `gan-bench report` on IS.
# The Inception Score needs pytorch-fid's Inception weights file with its logit layer (README "Metrics").
#
#   scripts/reproduce/improvedgan_table3.sh [ITERATIONS=600000] [OUT=multirun/improvedgan_table3] [JOBS=1]
#       [SEEDS=1,2,3] [ROOT=data]
set -euo pipefail
ITERATIONS=${1:-600000}
OUT=${2:-multirun/improvedgan_table3}
JOBS=${3:-1}
SEEDS=${4:-1,2,3}
ROOT=${5:-data}
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
# estimates, not measurements: ~10 ms/iteration (minibatch discrimination + VBN), ~8 ms (feature matching), launch-
# bound on one H100/H200-class GPU, plus ~30 min of IS/FID evaluation per run
GPU_HOURS=$(python3 -c "print(round(${N_SEEDS} * (${ITERATIONS} * (2 * 0.010 + 0.008) + 3 * 1800) / 3600, 1))")
echo "improvedgan_table3: cifar_improved with and without historical averaging, cifar_improved_fm x seeds ${SEEDS},"
echo "  ${ITERATIONS} iterations each -> ${OUT}; estimated (not measured): about ${GPU_HOURS} GPU hours (${JOBS} at a time)"
gan-bench weights

LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
COMMON=("train.seed=${SEEDS}" "train.iterations=${ITERATIONS}" "dataset.root=${ROOT}")
gan-bench train -m +experiment=cifar_improved stabilizers.historical_averaging.weight=1.0,0.0 "${COMMON[@]}" \
    "hydra.sweep.dir=${OUT}/mbd" "${LAUNCHER[@]}" || echo "some jobs failed: see the report"
gan-bench train -m +experiment=cifar_improved_fm "${COMMON[@]}" "hydra.sweep.dir=${OUT}/fm" "${LAUNCHER[@]}" \
    || echo "some jobs failed: see the report"
gan-bench report "${OUT}/mbd" "${OUT}/fm" --out "${OUT}/report" --metric is_mean --force
