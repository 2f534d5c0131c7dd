#!/usr/bin/env bash
# `make reproduce` end to end on a GPU machine that has torch but no Jupyter stack.
# Usage: bash benchmarks/gpu_reproduce.sh OUT_DIR [PROFILE]
# Wheels for papermill, ipykernel & co. are installed from .whl/ when it exists
# (benchmarks/fetch_wheels.sh fills it; see benchmarks/README.md); results and executed
# notebooks are packed into OUT_DIR.
set -uo pipefail
out=${1:?usage: gpu_reproduce.sh OUT_DIR [PROFILE]}
profile=${2:-gpu-smoke}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MULTIAD_OFFLINE=1
python3 -c "import torch, papermill; print('torch', torch.__version__, torch.cuda.get_device_name(), 'papermill', papermill.__version__)"
# CUDA-only tests (RUN_TESTS=0 skips them when `gpu_session.sh tests` ran them already);
# a hang shows its stack (pytest-timeout) instead of eating the session
if [ "${RUN_TESTS:-1}" = 1 ]; then
    python3 -m pytest -q -p no:cacheprovider --timeout "${TEST_TIMEOUT:-150}" \
        tests/test_*cuda*.py 2>&1 | tee "$out/pytest.log" | tail -40
fi
start=$(date +%s)
timeout "${REPRODUCE_TIMEOUT:-3600}" python3 -m multiad.pipeline.reproduce --profile "$profile" --ray in-process \
    --results /tmp/results 2>&1 \
    | grep --line-buffered -v "TCP without encryption" | tee "$out/reproduce.log"
status=${PIPESTATUS[0]}
echo "reproduce exit status $status after $(( $(date +%s) - start )) s" | tee -a "$out/reproduce.log"
# what comes back: the executed notebooks and every run's metrics, losses and provenance
(cd /tmp && find results -name metrics.json -o -name losses.csv -o -name train.json \
    -o -name per_image.csv) > /tmp/keep.txt
tar czf "$out/results.tgz" -C /tmp -T /tmp/keep.txt
tar czf "$out/executed.tgz" book/executed
exit "$status"
