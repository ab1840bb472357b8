#!/usr/bin/env bash
# Albuquerque, Monteiro et al., "Multi-objective training of GANs with multiple discriminators" (ICML 2019): the Stacked
# MNIST table (modes covered out of 1,000 and KL of the mode histogram). AVG, GMAN and HV with 8, 16 and 24
# discriminators, each behind a fixed 3 -> 3 conv projection, the authors' Stacked MNIST nets
# (conf/experiment/stackedmnist_hv24.yaml), SEEDS seeds each, then `gan-bench report`.
# Needs dataset=stacked_mnist and metric modes_stacked (being added in another branch).
#
#   scripts/reproduce/multid_stackedmnist.sh [EPOCHS=50] [OUT=multirun/multid_stackedmnist] [JOBS=1] [SEEDS=1,2,3]
#       [METRIC=modes_covered_stacked]
#
# METRIC: the key of the figures, as the modes_stacked metric names its values.
set -euo pipefail
EPOCHS=${1:-50}
OUT=${2:-multirun/multid_stackedmnist}
JOBS=${3:-1}
SEEDS=${4:-1,2,3}
METRIC=${5:-modes_covered_stacked}
ITERATIONS=$((EPOCHS * 782))
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
# estimates, not measurements: these small nets are launch-bound, ~15 ms/iteration whatever K on one H100/H200-class
# GPU (the K Ds run as one vectorised module)
GPU_HOURS=$(python3 -c "print(round(${ITERATIONS} * ${N_SEEDS} * 9 * 0.015 / 3600, 1))")
echo "multid_stackedmnist: 9 settings (avg, gman, hv x 8, 16, 24 Ds) x seeds ${SEEDS}, ${ITERATIONS} iterations each"
echo "  modes_stacked on 26,000 samples at the end -> ${OUT}"
echo "  estimated: about ${GPU_HOURS} GPU hours on one H100/H200-class GPU (${JOBS} job(s) at a time)"

CLASSIFIER=classifiers/mnist_28px_lenet.pt
[ -f "$CLASSIFIER" ] || gan-bench classifier train dataset=mnist

LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
gan-bench train -m +experiment=stackedmnist_hv24 aggregation=avg,gman,hv discriminators=d8,d16,d24 \
    "train.seed=${SEEDS}" "train.iterations=${ITERATIONS}" "hydra.sweep.dir=${OUT}" "${LAUNCHER[@]}" \
    || echo "some jobs failed: see the report"
gan-bench report "$OUT" --metric "$METRIC" --force
