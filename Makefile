# retrosim — two commands for a new user: `make test` and `make paper`.
# Both create .venv from the pinned lock file when it is missing or stale.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
LOCK    := requirements/lock-linux-x86_64.txt
STAMP   := $(VENV)/.installed
UV_VERSION := 0.13.8
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: help env test paper docs bench lint format clean lock distclean

help:
	@echo "make test    set up .venv if needed and run the whole test suite (with the notebooks)"
	@echo "make paper   set up .venv if needed, rerun what changed in studies/, build paper/retrosim.pdf"
	@echo "make docs    build the documentation site into docs/_build/html (runs the notebooks, small settings)"
	@echo "make bench   run the benchmark suite, write benchmarks/results.json"
	@echo "make lint    ruff check"
	@echo "make clean   remove results/, built paper, built docs and caches (keeps .venv)"
	@echo "make lock    re-resolve requirements/ from pyproject.toml (maintainers)"

env: $(STAMP)

# The stamp depends on the lock and pyproject, so a changed lock reinstalls.
$(STAMP): $(LOCK) pyproject.toml tools/find_python.sh
	@set -e; if [ ! -x "$(PY)" ]; then \
	  PYBIN=$$(tools/find_python.sh); \
	  echo "creating $(VENV) with $$PYBIN"; \
	  "$$PYBIN" -m venv $(VENV); \
	fi
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@echo "installing pinned dependencies from $(LOCK)"
	@$(UV) pip sync --quiet --python $(PY) --require-hashes --compile-bytecode $(LOCK)
	@$(UV) pip install --quiet --python $(PY) --no-deps --config-settings editable_mode=compat -e .
	@touch $(STAMP)

test: $(STAMP)
	@$(PY) tools/run_tests.py

paper: $(STAMP)
	@$(PY) tools/build_paper.py

# -E reads every page afresh, so every build reports every warning; -W --keep-going lists them
# all, then fails.
docs: $(STAMP)
	@rm -rf docs/_build/html docs/api/generated
	@$(PY) -m sphinx -b html -E -W --keep-going -j auto docs docs/_build/html

bench: $(STAMP)
	@$(PY) benchmarks/run.py

lint: $(STAMP)
	@$(VENV)/bin/ruff check retrosim tests studies benchmarks tools
	@$(VENV)/bin/ruff format --check retrosim tests studies benchmarks tools

format: $(STAMP)
	@$(VENV)/bin/ruff format retrosim tests studies benchmarks tools
	@$(VENV)/bin/ruff check --fix retrosim tests studies benchmarks tools

lock:
	@$(UV) pip compile pyproject.toml --all-extras --generate-hashes --python-version 3.12 \
	  --python-platform x86_64-manylinux_2_28 -o $(LOCK)

clean:
	rm -rf results paper/retrosim.pdf paper/generated .pytest_cache .ruff_cache .hypothesis
	rm -rf docs/_build docs/api/generated
	find docs/tutorials -maxdepth 1 -name '*.py' -type l -delete
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
