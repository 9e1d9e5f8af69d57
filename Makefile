# fiks-svarut maintainer commands. `make help` lists them.
VENV   ?= .venv
PYTHON ?= $(VENV)/bin/python
SPECS_DIR ?=
GEN = $(PYTHON) -m generator $(if $(SPECS_DIR),--specs-dir $(SPECS_DIR),)

.PHONY: help install generate check-generated update-specs check-upstream lint test check demo bench

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(PYTHON):
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[dev]"

install: $(PYTHON)  ## create .venv with the client, generator, test and lint tools

generate: $(PYTHON)  ## regenerate svarut/generated/ from the locked specs
	$(GEN) generate

check-generated: $(PYTHON)  ## fail if svarut/generated/ differs from a fresh generation
	$(GEN) check

update-specs: $(PYTHON)  ## lock upstream commit COMMIT=<sha> (SPECS_FROM=<dir> to read local files); prints the change report
	@test -n "$(COMMIT)" || { echo "usage: make update-specs COMMIT=<upstream commit> [SPECS_FROM=<dir>]"; exit 2; }
	$(GEN) update-specs --commit $(COMMIT) $(if $(SPECS_FROM),--from-dir $(SPECS_FROM),)

check-upstream: $(PYTHON)  ## exit 1 with a change report if the published specs differ from the lock
	$(GEN) check-upstream $(if $(PUBLISHED_BASE),--published-base $(PUBLISHED_BASE),)

lint: $(PYTHON)  ## ruff and mypy --strict over generator, runtime and generated code
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test: $(PYTHON)  ## the test suite
	$(PYTHON) -m pytest

check: lint check-generated test  ## everything CI runs

demo: $(PYTHON)  ## run the simulator, send a letter through the real client, follow its status
	$(PYTHON) -m svarut.simulator.demo

bench: $(PYTHON)  ## benchmarks against a local sink, with same-run baselines (writes bench/results.json)
	$(PYTHON) bench/bench.py $(BENCH_ARGS)

.PHONY: check-history
check-history: $(PYTHON)  ## every upstream spec version: relock, regenerate, mypy, send every kind to the simulator
	SVARUT_SPEC_HISTORY=all $(PYTHON) -m pytest tests/test_spec_history.py -rxX
