# The whole setup: `make run` (install what running needs + classify the sample images),
# `make test` (adds the test and ray extras, runs the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $@

run: install
	$(BIN)/resnet-classify sample_images/
	@echo "resnet-classify is in $(BIN)/: run 'source $(BIN)/activate' to put it on your PATH." >&2

test: install-test
	$(BIN)/python -m pytest -q

bench: install-test
	-$(BIN)/pip install --quiet -e '.[test,ray,bench]'  # the PyTorch peer; the bench skips it if this fails
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/fast_decode.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
