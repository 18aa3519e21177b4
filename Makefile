# GridFlex developer entry points. `make install` is idempotent: stamp files make a second
# run a no-op until pyproject.toml or package-lock.json change.
SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
PYTEST := $(VENV)/bin/pytest
RUFF := $(VENV)/bin/ruff
# The real forge binary from npm's platform package. Not `npx forge`: the npm shim
# (node_modules/.bin/forge -> bin.mjs) always exits 0, so failing tests would pass CI.
# Recursive `=` so the path is looked up after `npm ci` has run.
FORGE = $(or $(firstword $(wildcard $(CURDIR)/node_modules/@foundry-rs/forge-*/bin/forge)),\
	$(error forge binary not found under node_modules/@foundry-rs: run make install))
SOLC_WHICH := scripts/solc --which

.PHONY: install test test-forge test-python test-deep gas gas-check lint format demo bench clean

# Native batch keccak for settlement (gridflex/rules/native); without a C compiler the build says so
# and gridflex falls back to pycryptodome. The stamp makes a second run a no-op.
NATIVE_STAMP := gridflex/rules/native/.built

install: $(VENV)/.installed node_modules/.installed $(NATIVE_STAMP)

$(NATIVE_STAMP): gridflex/rules/native/keccak_batch.c gridflex/rules/native/build.py | $(VENV)/.installed
	$(VENV)/bin/python -m gridflex.rules.native.build
	touch $@

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package-lock.json package.json
	npm ci --no-audit --no-fund
	touch $@

test: install test-forge test-python

test-forge: install
	@$(SOLC_WHICH)
	@if [ -n "$$(find contracts -name '*.sol' 2>/dev/null | head -n1)" ]; \
	then $(FORGE) test; else echo "forge: no contracts yet, skipped"; fi

test-python: install
	$(PYTEST) -q

test-deep: install
	@$(SOLC_WHICH)
	FOUNDRY_PROFILE=deep $(FORGE) test
	$(PYTEST) -q -m deep

# Writes .gas-snapshot (per-test gas) and snapshots/ (vm.snapshotGas* cheatcode groups);
# both are committed and reviewed like code. `make gas-check` fails on a drift.
gas: install
	@$(SOLC_WHICH)
	$(FORGE) snapshot

gas-check: install
	@$(SOLC_WHICH)
	$(FORGE) snapshot --check

lint: install
	$(RUFF) check .
	$(RUFF) format --check .
	@$(SOLC_WHICH)
	@# Own out/cache dirs: crytic-compile chokes on forge's slim build-info files in out/.
	rm -rf out/slither cache/slither
	PATH="$(dir $(FORGE)):$$PATH" FOUNDRY_OUT=out/slither FOUNDRY_CACHE_PATH=cache/slither \
		$(VENV)/bin/slither . \
		--exclude-dependencies --filter-paths "node_modules|contracts/test" --fail-medium

format: install
	$(RUFF) format .
	$(RUFF) check --fix .

demo: install
	$(VENV)/bin/gridflex demo

# Every benchmark (gas, ingest, settle, demo, explorer, a 60 s load run), then rewrites the generated
# tables of BENCHMARKS.md with the machine and the command behind each figure (~15 min).
bench: install
	$(VENV)/bin/python scripts/bench.py all --write BENCHMARKS.md

clean:
	rm -rf out cache .gridflex .pytest_cache .ruff_cache
