# The whole setup: `make run` (install + classify the sample images), `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $@

run: install
	$(BIN)/resnet-classify sample_images/

test: install
	$(BIN)/python -m pytest -q

bench: install
	-$(BIN)/pip install --quiet -e '.[test,ray,bench]'  # the PyTorch peer; the bench skips it if this fails
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/fast_decode.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
