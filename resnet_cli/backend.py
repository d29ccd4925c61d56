"""The Keras backend, imported once and quietly; what the machine computes on (GPU, bf16).

A leaf: the weights downloader, the Keras runtime and the config resolver all come here,
none of them to each other.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys

from .console import quiet_native_stderr

GPU_INSTALL_HINT = 'pip install "resnet-cli[gpu]" (Keras on JAX with CUDA)'
_JAX_GPU_PLUGINS = ("jax_cuda13_plugin", "jax_cuda12_plugin", "jax_rocm7_plugin", "jax_rocm60_plugin")


def jax_gpu_installed() -> bool:
    """A JAX GPU plugin is installed (what the gpu extra brings); no import, so no cost."""
    return importlib.util.find_spec("jax") is not None and any(
        importlib.util.find_spec(p) is not None for p in _JAX_GPU_PLUGINS
    )


def _backend_chosen() -> bool:
    """The user chose a Keras backend: $KERAS_BACKEND, or "backend" in keras.json."""
    if os.environ.get("KERAS_BACKEND"):
        return True
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        import json

        with open(os.path.join(home, "keras.json"), encoding="utf-8") as handle:
            return "backend" in json.load(handle)
    except (OSError, ValueError):
        return False


def import_keras(device: str = "auto", threads: int = 0):
    """Import Keras once, quietly, for the requested device ("auto", "cpu", "gpu"), with
    ``threads`` inference threads (0: the backend's default, one per core). Where the gpu
    extra is installed, a GPU driver is present and the user chose no backend, Keras runs on
    JAX (the fastest GPU path measured; the base install's TensorFlow is CPU-only)."""
    if "keras" not in sys.modules:
        if device != "cpu" and gpu_driver_present() and jax_gpu_installed() and not _backend_chosen():
            os.environ["KERAS_BACKEND"] = "jax"
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


def gpu_problem(device: str = "auto") -> str | None:
    """Why Keras cannot run on a GPU here, in plain words; None when it can. Cheap where
    there is no GPU driver: no backend is imported then."""
    if not gpu_driver_present():
        return "no GPU driver on this machine (no /dev/nvidiactl)"
    if not (jax_gpu_installed() or importlib.util.find_spec("nvidia") is not None):
        # Neither the gpu extra nor any CUDA wheels (TensorFlow's and-cuda, PyTorch's): asking
        # the backend would cost seconds of import to learn the same.
        return "no GPU build of a Keras backend is installed"
    keras = import_keras(device)
    if not has_gpu(keras):
        return f"the Keras backend ({keras.backend.backend()}) sees no GPU"
    return None


def gpu_name(keras) -> str:
    """The GPU the Keras backend runs on, for the summary line ("gpu" when it cannot say)."""
    try:
        if keras.backend.backend() == "jax":
            import jax

            return next(d.device_kind for d in jax.devices() if d.platform == "gpu")
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            return tf.config.experimental.get_device_details(gpu).get("device_name", "gpu")
    except Exception:  # noqa: BLE001 - a name is only for the summary line
        pass
    return "gpu"


def onnxruntime_has_cuda() -> bool:
    if not onnxruntime_available():
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux lists them (/proc/cpuinfo), read once per process;
    empty where it cannot say. ``RESNET_CLI_CPU_FLAGS`` (space-separated) stands in for them:
    what another kind of machine would choose and build, made and checked on this one."""
    if (stand_in := os.environ.get("RESNET_CLI_CPU_FLAGS")) is not None:
        return frozenset(stand_in.split())
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            return frozenset(next((line for line in handle if line.startswith("flags")), "").split()[2:])
    except OSError:
        return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 (AVX512-BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


# OpenVINO's model converter: ``import openvino`` imports it (with its telemetry and absl,
# ~0.1 s of a cold start) inside ``try: … except ImportError``; we hand the runtime ONNX files
# and IRs, which it reads itself.
_OPENVINO_CONVERTER = "openvino.tools.ovc"


def import_openvino():
    """``import openvino`` without its converter, and quietly: its telemetry logs warnings on
    the root logger where HOME cannot be written (it sends nothing unless the user opted in).
    Should a release import the converter unguarded, OpenVINO is imported whole."""
    if "openvino" not in sys.modules:
        import logging

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        blocked = _OPENVINO_CONVERTER not in sys.modules
        if blocked:
            sys.modules[_OPENVINO_CONVERTER] = None  # import → ImportError
        try:
            import openvino  # noqa: F401
        except ImportError:
            if not blocked:
                raise
            native = "openvino._pyopenvino"  # loaded once per process: kept, with its submodules
            for name in [m for m in sys.modules if m.startswith("openvino.") or m == "openvino"]:
                if not name.startswith(native):
                    del sys.modules[name]  # the converter's block too
            blocked = False
            import openvino  # noqa: F401
        finally:
            if blocked and sys.modules.get(_OPENVINO_CONVERTER, 0) is None:
                del sys.modules[_OPENVINO_CONVERTER]
            root.setLevel(level)
    import openvino

    return openvino


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
