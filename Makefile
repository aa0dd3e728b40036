# Set-up and the everyday commands. On a fresh machine (Python >= 3.10 and make), two commands do everything:
#
#   make run     create .venv, install what the main job needs, run `python -m sdeve` (ARGS="--help" for options)
#   make test    create .venv, install the project with every CPU backend and the test tools, run the tests
#
# Each step runs only when needed: .venv is made once, and the installs rerun only when pyproject.toml changes.
# Without a CUDA GPU (no `nvidia-smi -L`), a CPU build of torch is installed first, so that the project's torch
# requirement does not pull a CUDA build of several GB. Other targets: test-slow, docs, dist, wheel-check, ci,
# clean (`make help`).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where PyPI's torch for this platform is a CUDA build, pick the CPU one from PyTorch's own index, for example:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_CPU ?= torch==2.13.0
TORCH_INDEX ?=
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
comma := ,
# The documentation's tools too: the tests check the docs' hooks and (slow) build the site.
EXTRAS := all,test,docs$(if $(HAS_GPU),$(comma)cupy)
# At most 4 test workers: each imports torch and JAX; more mostly wait on each other on a small machine.
PYTEST := $(BIN)/python -m pytest -n auto --maxprocesses 4 -q
OUTSIDE ?= /tmp/sdeve-outside-checkout
override OUTSIDE := $(abspath $(OUTSIDE))

.PHONY: help run test test-slow docs dist wheel-check ci clean

## This list.

help:
	@awk '/^## /{doc=substr($$0, 4); next} /^[a-z-]+:/{if (doc) printf "  make %-12s %s\n", substr($$1, 1, length($$1) - 1), doc; doc=""}' Makefile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[cli]"
	@touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
ifeq ($(HAS_GPU),)
	$(BIN)/python -m pip install --quiet "$(TORCH_CPU)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
endif
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

$(VENV)/.docs-deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	@touch $@

## The main job: sample a 2-D mixture with its exact score, report quality and time, write sdeve-mixture.png.
run: $(VENV)/.run-deps
	$(BIN)/python -m sdeve $(ARGS)

## The tests (tests/, the conformance suite's tests included), the slow ones skipped; CI runs exactly this.
test: $(VENV)/.test-deps
	$(PYTEST) $(ARGS)

## Only the tests marked slow (CI runs them after `make test`).
test-slow: $(VENV)/.test-deps
	$(PYTEST) --runslow -m slow $(ARGS)

## The documentation site, into site/ (fails on any warning).
docs: $(VENV)/.docs-deps
	$(BIN)/python -m mkdocs build --strict

## The sdist and the wheel, into dist/, checked by twine.
dist: | $(BIN)/python
	$(BIN)/python -m pip install --quiet build twine
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

## The wheel in a fresh environment, used from outside the checkout: the main job and the conformance suite.
wheel-check: dist
	rm -rf $(OUTSIDE)
	$(PYTHON) -m venv $(OUTSIDE)/venv
	$(OUTSIDE)/venv/bin/python -m pip install --quiet --upgrade pip
ifeq ($(HAS_GPU),)
	$(OUTSIDE)/venv/bin/python -m pip install --quiet "$(TORCH_CPU)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
endif
	$(OUTSIDE)/venv/bin/python -m pip install --quiet "$$(ls dist/*.whl)[all,conformance]"
	cd $(OUTSIDE) && venv/bin/python -c "import sdeve, sdeve_backends, sdeve_conformance; \
		assert all(m.__file__.startswith('$(OUTSIDE)/venv/') for m in (sdeve, sdeve_backends, sdeve_conformance)); \
		print('imported from', sdeve.__file__)"
	cd $(OUTSIDE) && venv/bin/sdeve --no-progress --out $(OUTSIDE)/mixture.png
	cd $(OUTSIDE) && venv/bin/python -m sdeve_conformance --device cpu --json $(OUTSIDE)/conformance.json \
		--failures-only

## Everything CI runs (.ci/run).
ci:
	bash .ci/run

## Remove the environments and everything built.
clean:
	rm -rf $(VENV) dist build site *.egg-info $(OUTSIDE)
