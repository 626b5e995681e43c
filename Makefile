# Two commands do everything on a fresh machine:
#   make run   - create .venv if missing, install, run the pipeline on the embedded default data
#   make test  - create .venv if missing, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.adaptflow-installed

.PHONY: run test install sample-data clean repro

install: $(STAMP)

# torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/adaptflow run

test: $(STAMP)
	$(BIN)/python -m pytest

sample-data: $(STAMP)
	$(BIN)/python -m tasks.sample_data data/sample

clean:
	rm -rf outputs .pytest_cache

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
