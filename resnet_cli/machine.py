"""The facts about the computer a run settles against — cores, CPU flags, the runtimes
installed, the GPUs they see — probed once (``probe``) before the run is settled, so that
every decision after it (``config.settle``) is a pure function of the request and these."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .backend import cpu_flags, gpu_problem, onnxruntime_available, onnxruntime_has_cuda, openvino_available


@dataclass(frozen=True)
class Machine:
    cores: int = 1
    cpu_flags: frozenset[str] = frozenset()
    onnxruntime: bool = True  # ONNX Runtime and onnx installed
    onnxruntime_cuda: bool = False  # its build has the CUDA provider
    openvino: bool = True
    keras_gpu_problem: str | None = "not probed"  # why Keras has no GPU here; None: it has one

    @property
    def bf16(self) -> bool:
        """The CPU computes in bfloat16 (AVX512-BF16 or AMX)."""
        return bool(self.cpu_flags & {"avx512_bf16", "amx_bf16"})


def probe(gpu_questions: frozenset[str] = frozenset(), device: str = "auto") -> Machine:
    """This machine's facts. ``gpu_questions``: the runtimes ("onnx", "keras") whose GPU the run
    could go to — only those are asked (ONNX Runtime's import; a Keras backend's, seconds, where
    there is a GPU driver)."""
    return Machine(
        cores=os.cpu_count() or 1,
        cpu_flags=cpu_flags(),
        onnxruntime=onnxruntime_available(),
        onnxruntime_cuda="onnx" in gpu_questions and onnxruntime_has_cuda(),
        openvino=openvino_available(),
        keras_gpu_problem=gpu_problem(device) if "keras" in gpu_questions else "not probed",
    )
