# pix2pix_lit: `make train` runs the paper's facades recipe, `make test` runs the tests.
# Both create the virtual environment and install the project first when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch requirement installed before the project. PyPI's Linux wheel carries CUDA;
# on a CPU-only machine with a local CPU build, `make install TORCH=torch==2.13.0`.
TORCH ?= torch==2.13.0
# Where datasets live (data.root = $(DATA_DIR)/facades). A sibling ../shared/data with
# facades in it is used when present; otherwise ./data, where facades is downloaded.
DATA_DIR ?= $(if $(wildcard ../shared/data/facades/train),../shared/data,data)
# Extra Hydra overrides, e.g. make train ARGS="trainer=gpu trainer.precision=bf16-mixed"
ARGS ?=
# pytest arguments, e.g. make test PYTEST_ARGS="-k data"
PYTEST_ARGS ?= -n 2

STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install train train-debug test test-fast bench report lint format clean

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
