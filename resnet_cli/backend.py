"""The Keras backend, imported once and quietly; what the machine computes on (GPU, bf16).

A leaf: the weights downloader, the Keras runtime and the config resolver all come here,
none of them to each other.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide the C++ start-up chatter TensorFlow prints straight to fd 2 on import; show it
    only if the import fails."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def import_keras(device: str = "auto", threads: int = 0):
    """Import Keras once, quietly, for the requested device ("auto", "cpu", "gpu"), with
    ``threads`` inference threads (0: the backend's default, one per core)."""
    if "keras" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if threads:
            os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        if device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
        with quiet_native_stderr():
            import keras  # noqa: F401
    import keras

    return keras


def has_gpu(keras) -> bool:
    """Whether the Keras backend sees a GPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def gpu_driver_present() -> bool:
    """A GPU driver's device node exists (cheap: asking a backend costs seconds of import)."""
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg"))


def gpu_visible(device: str = "auto") -> bool:
    return gpu_driver_present() and has_gpu(import_keras(device))


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 (AVX512-BF16 or AMX), from /proc/cpuinfo's flags."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
