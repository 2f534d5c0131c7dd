#!/usr/bin/env bash
# Download the wheels of benchmarks/gpu_wheels.txt into .whl/ (git-ignored), for a GPU
# machine with no network and no Jupyter stack: benchmarks/gpu_reproduce.sh installs them.
# Usage: bash benchmarks/fetch_wheels.sh [PYTHON_VERSION]   (default 3.12)
set -euo pipefail
py=${1:-3.12}
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_26_x86_64 \
         manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
grep -v '^#' benchmarks/gpu_wheels.txt | xargs python3 -m pip download -q --no-deps \
    --only-binary=:all: --python-version "$py" --implementation cp "${platforms[@]}" -d .whl
echo "$(find .whl -name '*.whl' | wc -l) wheels in .whl/"
