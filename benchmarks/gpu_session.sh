#!/usr/bin/env bash
# A GPU session for issue-style work on a machine with torch but no network, in stages
# that each fit a 10-minute call. Run from the repository root:
#   MULTIAD_COMMIT=<sha> bash benchmarks/gpu_session.sh tests OUT_DIR [pytest args...]
#       CUDA correctness tests (all tests/*cuda*.py, or those pytest args select, e.g.
#       -k "not compiled") and a CLI run on the GPU
#   MULTIAD_COMMIT=<sha> bash benchmarks/gpu_session.sh bench OUT_DIR [bench.py args...]
#       `make bench` on the GPU (e.g. --compile --only train_loop,inference); its JSON
#       lands in OUT_DIR, to be committed under benchmarks/results/
#   MULTIAD_COMMIT=<sha> bash benchmarks/gpu_session.sh profile OUT_DIR
#       where the optimised step's time goes, by kind of kernel (benchmarks/profile_step.py)
#   bash benchmarks/gpu_reproduce.sh OUT_DIR gpu-smoke
#       the notebooks end to end through papermill (wheels from .whl/, see README.md)
# MULTIAD_COMMIT names the commit the copied tree is at (it may carry no .git).
set -uo pipefail
stage=${1:?usage: gpu_session.sh tests|bench|profile OUT_DIR [args...]}
out=${2:?usage: gpu_session.sh tests|bench|profile OUT_DIR [args...]}
shift 2
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MULTIAD_OFFLINE=1
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'tv', torchvision.__version__, torch.cuda.get_device_name())"
case "$stage" in
tests)
    # a hang shows its stack (pytest-timeout) instead of eating the session
    python3 -m pytest -q -p no:cacheprovider --timeout "${TEST_TIMEOUT:-240}" \
        tests/test_*cuda*.py "$@" 2>&1 | tee "$out/pytest_cuda.log" | tail -30
    status=${PIPESTATUS[0]}
    rm -rf /tmp/gpu-run  # a warm machine may hold an earlier call's run
    python3 -m multiad.cli -q run --data synthetic --category texture --root /tmp/synth \
        --teacher-weights random --epochs 3 --device cuda --out /tmp/gpu-run 2>&1 | tail -3
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    cp /tmp/gpu-run/metrics.json "$out/gpu_cli_run_metrics.json" 2>/dev/null || status=1
    exit "$status"
    ;;
bench)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 benchmarks/bench.py --out "$out" "$@" 2>&1 | tee "$out/bench.log"
    exit "${PIPESTATUS[0]}"
    ;;
profile)
    python3 benchmarks/profile_step.py --out "$out" "$@" 2>&1 | tee "$out/profile_step.log"
    exit "${PIPESTATUS[0]}"
    ;;
*)
    echo "unknown stage $stage: use tests, bench or profile" >&2
    exit 2
    ;;
esac
