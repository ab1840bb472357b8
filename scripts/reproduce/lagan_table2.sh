#!/usr/bin/env bash
# Chavdarova, Pagliardini, Stich, Fleuret, Jaggi, "Taming GANs with Lookahead-Minmax" (ICLR 2021): the comparison of
# AltGAN, LA-AltGAN, ExtraGrad and LA-ExtraGrad (Table 2 as I recall it) on one dataset, raw and EMA generators,
# SEEDS seeds each (conf/experiment/{cifar,svhn,mnist}_*.yaml: the authors' nets, Adam, Lookahead k and EMA), then
# `gan-bench report` on the best FID.
# Target: the abstract's best CIFAR-10 FID 12.19 (no labels); the table's means +- std are to be taken from the PDF.
#
#   scripts/reproduce/lagan_table2.sh [DATASET=cifar10|svhn|mnist] [ITERATIONS=500000 (mnist: 100000)]
#       [OUT=multirun/lagan_DATASET] [JOBS=1] [SEEDS=1,2,3] [ROOT=data]
#
# cifar10 and svhn: the four CIFAR-10 presets (svhn with dataset=svhn); mnist: mnist_lagan_adam with and without
# Lookahead, with alternating Adam and with extragradient (the authors' notebook uses k 1000 for both).
set -euo pipefail
DATASET=${1:-cifar10}
case "$DATASET" in
    cifar10|svhn) DEFAULT_ITERATIONS=500000 ;;
    mnist) DEFAULT_ITERATIONS=100000 ;;
    *) echo "DATASET must be cifar10, svhn or mnist, got ${DATASET}" >&2; exit 2 ;;
esac
ITERATIONS=${2:-$DEFAULT_ITERATIONS}
OUT=${3:-multirun/lagan_${DATASET}}
JOBS=${4:-1}
SEEDS=${5:-1,2,3}
ROOT=${6:-data}
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
if [ "$DATASET" = mnist ]; then
    SWEEP=(+experiment=mnist_lagan_adam optimizer=adam,extragradient optimizer.lookahead.k=0,1000)
    SECONDS_PER_RUN=$(python3 -c "print(${ITERATIONS} * (0.005 + 0.010) / 2)")  # alt / extragradient, launch-bound
    METRIC=fid_classifier
else
    SWEEP=(+experiment=cifar_altgan_adam,cifar_lagan_adam,cifar_extragrad,cifar_lagan_extragrad "dataset=${DATASET}")
    # FLOPs of the ResNets at an assumed 40 TFLOP/s: 0.14 s (alternating) and 0.28 s (extragradient) per iteration
    SECONDS_PER_RUN=$(python3 -c "print(${ITERATIONS} * (0.14 + 0.28) / 2 + 3600)")  # + ~1 h of FID/IS
    METRIC=fid
fi
GPU_HOURS=$(python3 -c "print(round(4 * ${N_SEEDS} * ${SECONDS_PER_RUN} / 3600, 1))")
echo "lagan_table2 (${DATASET}): AltGAN, LA-AltGAN, ExtraGrad, LA-ExtraGrad x seeds ${SEEDS}, ${ITERATIONS} iterations each -> ${OUT}"
echo "  estimated (not measured): about ${GPU_HOURS} GPU hours on one H100/H200-class GPU (${JOBS} job(s) at a time)"

if [ "$DATASET" = mnist ]; then
    [ -f classifiers/mnist_28px_lenet.pt ] || gan-bench classifier train dataset=mnist
fi
LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
gan-bench train -m "${SWEEP[@]}" "train.seed=${SEEDS}" "train.iterations=${ITERATIONS}" "dataset.root=${ROOT}" \
    "hydra.sweep.dir=${OUT}" "${LAUNCHER[@]}" || echo "some jobs failed: see the report"
gan-bench report "$OUT" --metric "$METRIC" --generator best --force
