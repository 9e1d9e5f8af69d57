# fiks-svarut maintainer commands. `make help` lists them.
VENV   ?= .venv
PYTHON ?= $(VENV)/bin/python
# Written only after a complete install, and older than pyproject.toml when the
# dependencies changed: a half-built or stale .venv is (re)installed, not used.
INSTALLED = $(VENV)/.installed
SPECS_DIR ?=
GEN = $(PYTHON) -m generator $(if $(SPECS_DIR),--specs-dir $(SPECS_DIR),)
# What a working .venv imports; a package deleted or half-installed since makes
# the sentinel go, so the next target repairs the venv before using it.
VENV_IMPORTS = import click, httpx2, pydantic, jinja2, datamodel_code_generator, pytest, mypy, svarut.generated
ifneq ($(wildcard $(INSTALLED)),)
ifneq ($(shell $(PYTHON) -c "$(VENV_IMPORTS)" >/dev/null 2>&1 && echo ok),ok)
$(shell rm -f $(INSTALLED))
endif
endif
# The tests find the specs as the generator does; SPECS_DIR= reaches them too.
TEST_ENV = $(if $(SPECS_DIR),SVARUT_SPECS_DIR=$(abspath $(SPECS_DIR)),)

.PHONY: help install generate check-generated update-specs check-upstream lint test check demo bench bench-batch docs docs-serve docs-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(INSTALLED): pyproject.toml
	rm -f $(INSTALLED)
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	@# pip trusts what its records say is installed; a package deleted from site-packages needs a reinstall.
	$(PYTHON) -c "$(VENV_IMPORTS)" 2>/dev/null || $(PYTHON) -m pip install --quiet --force-reinstall -e ".[dev]"
	$(PYTHON) -c "$(VENV_IMPORTS)"
	touch $(INSTALLED)

install: $(INSTALLED)  ## create (or repair) .venv with the client, generator, test and lint tools

generate: $(INSTALLED)  ## regenerate svarut/generated/ from the locked specs
	$(GEN) generate

check-generated: $(INSTALLED)  ## fail if svarut/generated/ differs from a fresh generation
	$(GEN) check

update-specs: $(INSTALLED)  ## lock upstream commit COMMIT=<sha> (SPECS_FROM=<dir> to read local files, FILES="a.json b.json" to add spec files, REF_COMMITS="fiks-common.json=<sha>" to pin referenced documents); prints the change report and adds it to CHANGELOG.md
	@test -n "$(COMMIT)" || { echo "usage: make update-specs COMMIT=<upstream commit> [SPECS_FROM=<dir>] [FILES=<new spec files>] [REF_COMMITS=<file>=<sha> ...]"; exit 2; }
	$(GEN) update-specs --commit $(COMMIT) $(if $(SPECS_FROM),--from-dir $(SPECS_FROM),) $(foreach f,$(FILES),--file $(f)) $(foreach r,$(REF_COMMITS),--ref-commit $(r))

check-upstream: $(INSTALLED)  ## exit 1 with a change report if the published specs (PUBLISHED_BASE=<url or dir>) differ in content from the lock
	$(GEN) check-upstream $(if $(PUBLISHED_BASE),--published-base $(PUBLISHED_BASE),)

lint: $(INSTALLED)  ## ruff and mypy --strict over generator, runtime and generated code
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test: $(INSTALLED)  ## the test suite
	$(TEST_ENV) $(PYTHON) -m pytest

check: lint check-generated test  ## everything CI runs

demo: $(INSTALLED)  ## run the simulator, send a letter through the real client, follow its status
	$(PYTHON) -m svarut.simulator.demo

bench: $(INSTALLED)  ## every benchmark, with same-run baselines (bench.py, bench_batch.py, bench_latency.py, bench_workers.py, bench_tls.py; BENCH_ARGS=--strict fails on a missed target, --quick for a short run)
	status=0; \
	$(PYTHON) bench/bench.py $(BENCH_ARGS) || status=1; \
	$(PYTHON) bench/bench_batch.py $(BATCH_ARGS) || status=1; \
	$(PYTHON) bench/bench_latency.py $(BENCH_ARGS) || status=1; \
	$(PYTHON) bench/bench_workers.py $(BENCH_ARGS) || status=1; \
	$(PYTHON) bench/bench_tls.py $(BENCH_ARGS) || status=1; \
	exit $$status

bench-batch: $(INSTALLED)  ## batch sending vs a plain loop only, 10,000 x 20 KB letters to a local sink (BATCH_ARGS=--quick)
	$(PYTHON) bench/bench_batch.py $(BATCH_ARGS)

.PHONY: check-history
check-history: $(INSTALLED)  ## every upstream spec version: relock, regenerate, mypy, send every kind to the simulator
	$(TEST_ENV) SVARUT_SPEC_HISTORY=all $(PYTHON) -m pytest tests/test_spec_history.py

docs: $(INSTALLED)  ## the documentation site (guides, API and CLI reference) into site/, offline; warnings are errors
	$(PYTHON) -m sphinx -W --keep-going -b html docs site

docs-serve: docs  ## serve site/ on http://127.0.0.1:8000/ (DOCS_PORT=<port>)
	$(PYTHON) -m http.server --bind 127.0.0.1 --directory site $(or $(DOCS_PORT),8000)

docs-check: docs  ## open site/ in headless Chromium (Debian's chromium): screenshots into site/screenshots/, navigation and search checked
	SVARUT_DOCS_SITE=site SVARUT_DOCS_SCREENSHOTS=site/screenshots $(PYTHON) -m pytest tests/test_docs_browser.py

.PHONY: dist
DIST ?= dist
dist: $(INSTALLED)  ## sdist and wheel into dist/ (DIST=<dir>), built offline by the venv's pinned hatchling; the README says how to install the wheel
	rm -f $(DIST)/fiks_svarut-*
	$(PYTHON) -m build --no-isolation --outdir $(DIST) .
