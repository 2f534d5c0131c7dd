# Multi-AD reproducibility package. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNS ?= runs
DEMO_OUT ?= $(RUNS)/demo-texture
# The README's main command: the embedded synthetic texture set, CPU-sized.
DEMO_ARGS ?= --data synthetic --category texture --root data/synthetic \
	--teacher-weights auto --image-size 128 --epochs 8 --set train.batch_size=8

.PHONY: help setup test lint demo clean-demo bench

help:
	@echo "make setup   - create $(VENV) and install the package with dev extras (pinned torch)"
	@echo "make demo    - train + evaluate on the embedded synthetic texture set (CPU ok)"
	@echo "make test    - run the test suite"
	@echo "make lint    - ruff"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check multiad tests

demo: setup
	$(BIN)/multiad run $(DEMO_ARGS) --out $(DEMO_OUT)
	@echo "metrics: $(DEMO_OUT)/metrics.json   heatmaps: $(DEMO_OUT)/heatmaps/"

clean-demo:
	rm -rf $(DEMO_OUT)

bench: setup
	$(BIN)/python benchmarks/bench.py --out benchmarks/results
