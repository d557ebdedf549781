# The two commands: `make app` (run the app) and `make test` (run the tests).
# Each creates .venv and installs what it needs, once (idempotent).
#
# CPU machines get the CPU build of torch through constraints-cpu.txt; where `nvidia-smi` exists the
# constraint is dropped and pip takes the CUDA build. Elsewhere on CPU, add the PyTorch CPU index:
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make test

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_CONSTRAINT ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)
PYTEST_ARGS ?=

export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: app test test-fast lint install demo bench clean

$(BIN)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_CONSTRAINT) -e ".[test]"
	touch $@

install: $(BIN)/.installed

app: $(BIN)/.installed
	$(BIN)/glore-app

# Everything CI runs: lint and types, the fast suite, the end-to-end runs and the browser test.
test: lint
	$(BIN)/python -m pytest -q --slow $(PYTEST_ARGS)

# ruff (lint and format) over the tree, mypy over the engine and the store.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: $(BIN)/.installed
	$(BIN)/glore-train demo --bundle-dir glore_engine/bundled

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_generation.py
	$(BIN)/python bench/bench_scoring.py

clean:
	rm -rf $(VENV) .pytest_cache
