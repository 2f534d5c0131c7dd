# Multi-AD reproducibility package. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNS ?= runs
DEMO_OUT ?= $(RUNS)/demo-texture
# The README's quick command: the embedded synthetic texture set, CPU-sized; the teacher is
# the paper's WRN-50-2 when its file can be had, else the pretrained offline EfficientNet-Lite0
DEMO_ARGS ?= --data synthetic --category texture --root data/synthetic \
	--teacher-weights auto --image-size 256 --epochs 6 --set train.batch_size=8

.PHONY: help setup setup-book test lint demo clean-demo bench book reproduce check-book

help:
	@echo "make setup   - create $(VENV) and install the package with dev extras (pinned torch)"
	@echo "make demo    - train + evaluate on the embedded synthetic texture set (CPU ok)"
	@echo "make test    - run the test suite"
	@echo "make lint    - ruff"
	@echo "make reproduce [PROFILE=demo|smoke|paper] [METHODS='name …'] [RAY=address|auto] - plan, run the plan as Ray tasks (a local instance, or a cluster), render the pages, build the book"
	@echo "make plan [PROFILE=…] - print the profile's plan: its steps, what is finished, the estimated time"
	@echo "make book    - build the jupyter-book into _build/html (warnings are errors)"
	@echo "make check-book - browser test of the built book (Debian chromium + playwright, offline)"
	@echo "make lab [LAB_RESULTS=results/demo] - explore the heatmaps live in JupyterLab (127.0.0.1)"
	@echo "make check-lab - browser test of the live explorer in JupyterLab (chromium, offline)"
	@echo "make bench   - throughput/memory benchmark on this device -> benchmarks/results/"
	@echo "make check-anomalib - the baselines against anomalib's torch models (installs the extra)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

$(VENV)/.installed-book: $(VENV)/.installed
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,book]'
	touch $@

setup-book: $(VENV)/.installed-book

test: setup-book
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check multiad tests benchmarks book/templates

demo: setup
	$(BIN)/multiad run $(DEMO_ARGS) --out $(DEMO_OUT)
	@echo "metrics: $(DEMO_OUT)/metrics.json   heatmaps: $(DEMO_OUT)/heatmaps/"

clean-demo:
	rm -rf $(DEMO_OUT)

bench: setup
	$(BIN)/python benchmarks/bench.py --out benchmarks/results
	$(BIN)/python benchmarks/bench_baselines.py --out benchmarks/results
	$(BIN)/python benchmarks/simplenet_seeds.py --out benchmarks/results
	$(BIN)/python benchmarks/skip_ts_forms.py --out benchmarks/results
	$(BIN)/python benchmarks/mhkd_costs.py --out benchmarks/results

book: setup-book
	$(BIN)/python benchmarks/summarize.py
	$(BIN)/python -m multiad.methods.settings book/_generated/method_settings.md
	$(BIN)/python -m multiad.pipeline.reproduce --placeholders
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "book: _build/html/index.html"

# Opens every page of the built book (make book) in Debian's chromium (apt-get install -y
# chromium; never `playwright install`); fails, instead of skipping, without book or browser.
check-book: setup-book
	MULTIAD_BROWSER_TEST=required MULTIAD_BOOK_EXPECT_PLOTLY=1 $(BIN)/python -m pytest -q -m browser tests/test_book_browser.py

# Differential checks of PaDiM, PatchCore, STFPM and RD4AD against anomalib's torch models on
# identical inputs (an optional extra: anomalib and lightning are not needed otherwise).
check-anomalib: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,anomalib]'
	$(BIN)/python -m pytest -q -m anomalib tests/test_anomalib_differential.py

.PHONY: lab check-lab check-anomalib plan
LAB_RESULTS ?= results/demo
LAB_ARGS ?=
# The live heatmap explorer: writes $(LAB_RESULTS)/explore.ipynb (from book/lab/explore.ipynb)
# and starts JupyterLab on 127.0.0.1 with it open; Run > Run All Cells shows the explorer.
# LAB_ARGS go to python -m multiad.pipeline.lab (--port 8899, --no-browser, --fresh, --ServerApp.…).
lab: setup-book
	$(BIN)/python -m multiad.pipeline.lab $(LAB_RESULTS) $(LAB_ARGS)

# Drives the explorer in a live JupyterLab in Debian's chromium (offline; never `playwright
# install`); fails, instead of skipping, without chromium, playwright or jupyterlab.
check-lab: setup-book
	MULTIAD_BROWSER_TEST=required $(BIN)/python -m pytest -q -m browser tests/test_lab_browser.py

PROFILE ?= demo
# Plans the profile, runs the plan's unfinished steps as Ray tasks (a local Ray instance
# started and stopped here; RAY=auto or RAY=host:port: a cluster, as does $RAY_ADDRESS),
# renders its pages, then builds the book even when a step or page failed, and exits
# non-zero in that case.
REPRODUCE_ARGS = --profile $(PROFILE) $(if $(METHODS),--methods $(METHODS)) $(if $(RAY),--ray $(RAY))
reproduce: setup-book
	$(BIN)/python -m multiad.pipeline.reproduce $(REPRODUCE_ARGS); status=$$?; \
	$(MAKE) book && exit $$status

plan: setup-book
	$(BIN)/python -m multiad.pipeline.reproduce $(REPRODUCE_ARGS) --plan
