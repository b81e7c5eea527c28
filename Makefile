# pix2pix_lit: `make train` runs the paper's facades recipe, `make test` runs the tests.
# Both create the virtual environment and install the project first when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch requirement installed before the project. PyPI's Linux wheel carries CUDA;
# on a CPU-only machine, point it at a CPU build: `make install TORCH=/path/to/torch-…+cpu….whl`.
TORCH ?= torch==2.13.0
# Where datasets live (data.root = $(DATA_DIR)/facades). A sibling ../shared/data with
# facades in it is used when present; otherwise ./data, where facades is downloaded.
DATA_DIR ?= $(if $(wildcard ../shared/data/facades/train),../shared/data,data)
# Extra Hydra overrides, e.g. make train ARGS="trainer=gpu trainer.precision=bf16-mixed"
ARGS ?=
# pytest arguments, e.g. make test PYTEST_ARGS="-k data"
PYTEST_ARGS ?= -n 2
# make gpu-check DRY_RUN=1: the GPU checks' CPU stand-ins at tiny sizes
DRY_RUN ?=
# gpu-check runs on a lent GPU machine's own python3 (its torch), with this tree's src/ on the
# path and the carried wheels installed first; here, the project's .venv when there is one
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install train train-debug test test-fast bench gpu-check report lint format clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev,export]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install torch (TORCH=...) and the project with dev tools

train: $(STAMP) ## train pix2pix on facades with the paper's recipe (ARGS= for overrides)
	$(BIN)/python -m pix2pix_lit.train experiment=facades_pix2pix paths.data_dir=$(DATA_DIR) $(ARGS)

train-debug: $(STAMP) ## a few CPU batches of the facades recipe, to check the set-up
	$(BIN)/python -m pix2pix_lit.train experiment=facades_pix2pix trainer=debug paths.data_dir=$(DATA_DIR) $(ARGS)

test: $(STAMP) ## run the whole test suite (slow tests included)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## run the tests not marked slow
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

bench: $(STAMP) ## throughput table (Lightning vs a plain loop, each speed switch) to experiments/throughput/
	$(BIN)/python -m pix2pix_lit.bench --data-root $(DATA_DIR)/facades $(ARGS)

gpu-check: ## on a GPU: tests, syncs, bench rows, 2 facades epochs in 8 min (DRY_RUN=1: on a CPU)
	PYTHON=$(GPU_CHECK_PYTHON) experiments/throughput/gpu_check.sh \
		$(if $(DRY_RUN),--dry-run) --data-root $(DATA_DIR)/facades $(ARGS)

report: $(STAMP) ## a sweep's runs as a table + figure (DIR=<multirun folder>, README=<study README> to update)
	$(BIN)/python -m pix2pix_lit.report $(DIR) $(if $(README),--readme $(README))

lint: $(STAMP) ## ruff: lint and check formatting
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP) ## ruff: fix lint findings and format
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean: ## remove caches and build outputs (keeps .venv, data and logs)
	rm -rf build dist .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
