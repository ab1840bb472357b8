#!/usr/bin/env bash
# Chavdarova, Gidel, Fleuret, Lacoste-Julien, "Reducing Noise in GAN Training with Variance Reduced Extragradient"
# (NeurIPS 2019): SVRE against SG-A and SE-A (the paper's table of best scores, Table 2 as I recall it) on MNIST or
# CIFAR-10 (conf/experiment/{mnist,cifar}_{svre,sea,sga}.yaml), SEEDS seeds each, then `gan-bench report`.
# Many of these presets' values could not be found in the paper or code (marked [gan-bench] in their headers): this
# sweep compares the three optimizers under one protocol; it does not claim the paper's numbers.
#
#   scripts/reproduce/svre_table2.sh [DATASET=mnist|cifar] [ITERATIONS=100000] [OUT=multirun/svre_DATASET] [JOBS=1]
#       [SEEDS=1,2,3] [ROOT=data]
set -euo pipefail
DATASET=${1:-mnist}
case "$DATASET" in
    mnist) SECONDS_PER_ITERATION="0.020 + 0.010 + 0.005"; METRIC=fid_classifier ;;  # launch-bound small nets
    cifar) SECONDS_PER_ITERATION="0.14 + 0.06 + 0.03"; METRIC=fid ;;  # ResNet FLOPs at an assumed 40 TFLOP/s
    *) echo "DATASET must be mnist or cifar, got ${DATASET}" >&2; exit 2 ;;
esac
ITERATIONS=${2:-100000}
OUT=${3:-multirun/svre_${DATASET}}
JOBS=${4:-1}
SEEDS=${5:-1,2,3}
ROOT=${6:-data}
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
GPU_HOURS=$(python3 -c "print(round(${ITERATIONS} * ${N_SEEDS} * (${SECONDS_PER_ITERATION}) / 3600, 1))")
echo "svre_table2 (${DATASET}): SVRE, SE-A, SG-A x seeds ${SEEDS}, ${ITERATIONS} iterations each -> ${OUT}"
echo "  estimated (not measured): about ${GPU_HOURS} GPU hours on one H100/H200-class GPU (${JOBS} job(s) at a time)"

if [ "$DATASET" = mnist ]; then
    [ -f classifiers/mnist_28px_lenet.pt ] || gan-bench classifier train dataset=mnist
fi
LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
gan-bench train -m "+experiment=${DATASET}_svre,${DATASET}_sea,${DATASET}_sga" "train.seed=${SEEDS}" \
    "train.iterations=${ITERATIONS}" "dataset.root=${ROOT}" "hydra.sweep.dir=${OUT}" "${LAUNCHER[@]}" \
    || echo "some jobs failed: see the report"
gan-bench report "$OUT" --metric "$METRIC" --force
