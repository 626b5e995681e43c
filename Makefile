# Two commands do everything on a fresh machine:
#   make run   - create .venv if missing, install, run the pipeline on the embedded default data
#   make test  - create .venv if missing, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.adaptflow-installed

.PHONY: run test install sample-data clean repro browser docs

install: $(STAMP)

# torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/adaptflow run

test: $(STAMP) browser
	$(BIN)/python -m pytest

# Debian's Chromium for the Prefect-UI browser test (Playwright drives it; no browser download). Installed where
# missing and apt is usable; elsewhere the browser test skips with a message.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	  >/dev/null; } || echo "make: /usr/bin/chromium is missing and could not be installed; the browser test skips"

sample-data: $(STAMP)
	$(BIN)/python -m tasks.sample_data data/sample

clean:
	rm -rf outputs .pytest_cache

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
