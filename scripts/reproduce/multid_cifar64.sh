#!/usr/bin/env bash
# Albuquerque, Monteiro et al., "Multi-objective training of GANs with multiple discriminators" (ICML 2019): the table
# of 1 vs 24 discriminators on upscaled CIFAR-10 (64x64). DCGAN, LSGAN and hinge losses, each with one D (no projection)
# and with 24 Ds behind fixed conv projections trained by hypervolume maximisation (conf/experiment/cifar64_*.yaml: the
# authors' nets and protocol), SEEDS seeds each, then `gan-bench report` on the best FID-ResNet.
# Targets (FID-ResNet, 1 D -> 24 Ds + HV): DCGAN 4.22 -> 1.89, LSGAN 4.55 -> 1.91, hinge 6.17 -> 2.25 (the paper's
# table, to be checked against the PDF); gan-bench's ResNet-18 differs from the authors', so compare runs with runs.
#
#   scripts/reproduce/multid_cifar64.sh [EPOCHS=50] [OUT=multirun/multid_cifar64] [JOBS=1] [SEEDS=1,2,3] [ROOT=data]
#
# ROOT holds CIFAR-10 (torchvision's cifar-10-batches-py, downloaded there when the network allows). JOBS > 1 runs that
# many jobs at once with Hydra's joblib launcher (pip install 'gan-bench[launchers]').
set -euo pipefail
EPOCHS=${1:-50}
OUT=${2:-multirun/multid_cifar64}
JOBS=${3:-1}
SEEDS=${4:-1,2,3}
ROOT=${5:-data}
ITERATIONS=$((EPOCHS * 782))
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
# estimates, not measurements: ~0.02 s/iteration with 1 D, ~0.075 s with 24 Ds on one H100/H200-class GPU (FLOPs of
# these nets at an assumed 40 TFLOP/s sustained; see the presets' headers)
GPU_HOURS=$(python3 -c "print(round(${ITERATIONS} * ${N_SEEDS} * 3 * (0.02 + 0.075) / 3600, 1))")
echo "multid_cifar64: 6 presets (dcgan, lsgan, hinge x 1 D / 24 Ds + HV) x seeds ${SEEDS}, ${EPOCHS} epochs = ${ITERATIONS} iterations each"
echo "  FID-ResNet (ResNet-18 logits, 1,000 samples, test-set statistics) once per epoch -> ${OUT}"
echo "  estimated: about ${GPU_HOURS} GPU hours on one H100/H200-class GPU (${JOBS} job(s) at a time)"

CLASSIFIER=classifiers/cifar10_64_64px_resnet18.pt
[ -f "$CLASSIFIER" ] || gan-bench classifier train dataset=cifar10_64 "dataset.root=${ROOT}"

LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
gan-bench train -m \
    +experiment=cifar64_dcgan1,cifar64_dcgan24,cifar64_lsgan1,cifar64_lsgan24,cifar64_hinge1,cifar64_hinge24 \
    "train.seed=${SEEDS}" "train.iterations=${ITERATIONS}" "dataset.root=${ROOT}" "hydra.sweep.dir=${OUT}" \
    "${LAUNCHER[@]}" || echo "some jobs failed: see the report"
gan-bench report "$OUT" --metric fid_classifier --force
