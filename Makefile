# The whole setup: `make run` (install what running needs + classify the sample images),
# `make test` (adds the test and ray extras, runs `make lint` (ruff), then the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-test run lint test test-fast bench gpu-check gpu-carry clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,ray]'
	@# The HTML report's test renders it in a real browser (Debian's chromium); the int8 test for CPUs
	@# without VNNI runs ONNX Runtime on an emulated Haswell (qemu-user). Where apt-get can install them
	@# (root, as on CI); elsewhere those tests skip and say why.
	-@{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } && \
		command -v qemu-x86_64 >/dev/null 2>&1 || \
		{ command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium qemu-user >/dev/null; }
	touch $@

run: install
	@$(BIN)/resnet-classify sample_images/; status=$$?; \
	echo "resnet-classify is in $(BIN)/: run 'source $(BIN)/activate' to put it on your PATH." >&2; exit $$status

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# In one worker process (pytest-xdist): a test that takes its process down (Ray's driver when its
# raylet dies, a hang past the timeout) fails alone; a fresh worker runs the rest.
test: lint
	$(BIN)/python -m pytest -q -n 1 --max-worker-restart=20

# Everyday work: no TensorFlow or Keras in the process (importing them fails), no test marked
# keras, slow or ray; the ONNX and OpenVINO paths on a weights file numpy and h5py write.
test-fast: install-test
	RESNET_CLI_TEST_LANE=fast $(BIN)/python -m pytest -q -n 2 --durations=10

bench: install-test
	-$(BIN)/pip install --quiet -e '.[test,ray,bench]'  # the PyTorch peer; the bench skips it if this fails
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/fast_decode.py
	$(BIN)/python benchmarks/driver_memory.py
	$(BIN)/python benchmarks/html_memory.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/datasets.py

# The GPU check (issue #16). On a machine with a GPU and the gpu extra: make gpu-check.
# Here, on the CPU, the same script at small sizes runs in the tests (tests/test_gpu_check.py).
gpu-check: install-test
	$(BIN)/pip install --quiet -e '.[gpu]'
	$(BIN)/python benchmarks/gpu_check.py --device gpu

# What a lent device machine (Python 3.12, JAX + CUDA, no Keras) needs carried: Keras' wheels and
# the dev photos; then run benchmarks/gpu_device.sh there (see its header).
gpu-carry:
	rm -rf .whl && mkdir -p .whl .bench/imagenet-dev
	grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
	cp ../shared/images/imagenet-dev/*.JPEG .bench/imagenet-dev/

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
