#!/usr/bin/env bash
# One GPU session: correctness tests on CUDA, the benchmark, and a CLI run on the GPU.
# Usage (on a GPU machine with torch installed): bash benchmarks/gpu_session.sh OUT_DIR
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MULTIAD_OFFLINE=1
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'tv', torchvision.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -m pytest -q -x -p no:cacheprovider tests/test_metrics_cuda.py tests/test_models.py \
    tests/test_losses.py tests/test_anomaly_map.py 2>&1 | tail -5
python3 benchmarks/bench.py --out "$out" ${BENCH_ARGS:-}
python3 -m multiad.cli -q run --data synthetic --category texture --root /tmp/synth \
    --teacher-weights random --epochs 3 --device cuda --out /tmp/gpu-run 2>&1 | tail -3
cp /tmp/gpu-run/metrics.json "$out/gpu_cli_run_metrics.json" 2>/dev/null || true
