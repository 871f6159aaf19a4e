# cfgen — common tasks. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# datasets that do not ship with the package (licence) are read from here; see docs/datasets.md
export CFGEN_DATA_DIR ?= $(abspath ../shared/datasets)

.PHONY: help install test test-slow test-fault test-slurm lint format run bench wheel-check clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

install:  ## create .venv and install cfgen (editable) with every extra, and NICE
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all]"
	# NICE's only release pins numpy<2 and pandas<2, which it does not need (docs/baselines.md)
	$(PY) -m pip install --no-deps "nicex==0.2.3"

test:  ## the default test suite (a few minutes; needs no Slurm, no browser)
	$(PY) -m pytest -q

test-slow:  ## the slow suites (minutes)
	$(PY) -m pytest -q -m slow

test-fault:  ## fault injection: kills, signals, full disks, corrupt journals (minutes)
	$(PY) -m pytest -q -m fault

test-slurm:  ## Slurm integration (needs `scripts/slurm-local.sh up`)
	$(PY) -m pytest -q -m slurm

lint:  ## ruff (lint + format check) and mypy over cfgen/
	$(PY) -m ruff check cfgen tests bench scripts
	$(PY) -m ruff format --check cfgen tests bench scripts
	$(PY) -m mypy

format:  ## apply ruff's formatting
	$(PY) -m ruff format cfgen tests bench scripts

run:  ## the default experiment (iris)
	$(PY) -m cfgen

bench:  ## speed and quality benchmarks → bench/results/
	$(PY) bench/bench_predictor.py
	$(PY) bench/bench_constraints.py
	$(PY) bench/bench_search.py
	$(PY) bench/bench_launcher.py

wheel-check:  ## build the wheel, install it in a fresh venv, run cfgen from outside the checkout
	bash scripts/wheel-check.sh

clean:  ## remove outputs and caches
	rm -rf outputs multirun .pytest_cache .ruff_cache .mypy_cache dist

include make/paper.mk
include make/docs.mk
