#!/bin/sh
# The GPU check on a lent device machine (Python 3.12, JAX with CUDA 13, no Keras): installs the
# carried wheels (`make gpu-carry` made .whl/ and .bench/imagenet-dev/ here), then runs
# benchmarks/gpu_check.py on the GPU. With the device tool:
#   run(command="sh benchmarks/gpu_device.sh", carry=[".whl", ".bench/imagenet-dev"], timeout_s=590)
# Results: the table on stdout, and $OUT/gpu.json, $OUT/gpu.md when $OUT is set.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
OUT="${OUT:-/tmp}"
python3 benchmarks/gpu_check.py --device gpu --dev .bench/imagenet-dev --json "$OUT/gpu.json" | tee "$OUT/gpu.md"
