# cfgen — common tasks. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export CFGEN_DATA_DIR ?= $(abspath ../shared/datasets)

.PHONY: help install test test-slow test-slurm lint run bench clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install:  ## create .venv and install cfgen (editable) with every extra
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all]"

test:  ## the default test suite (a few minutes)
	$(PY) -m pytest -q

test-slow:  ## the slow suites too
	$(PY) -m pytest -q -m "not slurm"

test-slurm:  ## Slurm integration (needs `scripts/slurm-local.sh up`)
	$(PY) -m pytest -q -m slurm

lint:  ## ruff
	$(PY) -m ruff check cfgen tests bench scripts

run:  ## the default experiment (iris)
	$(PY) -m cfgen

bench:  ## speed and quality benchmarks → bench/results/
	$(PY) bench/bench_predictor.py
	$(PY) bench/bench_constraints.py
	$(PY) bench/bench_search.py
	$(PY) bench/bench_launcher.py

clean:  ## remove outputs and caches
	rm -rf outputs multirun .pytest_cache .ruff_cache

include make/paper.mk
