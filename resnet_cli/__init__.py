"""resnet-classify: classify images from the shell with the pretrained ImageNet ResNets.

One run, top to bottom (each stage a sub-package; imports only point down):

    cli (Click) → request (what was asked) → commands/<name> → config (one frozen ModelConfig:
      the I/O, then a pure settle against the probed Machine) → plan (one frozen RunPlan)
      → engines.open(plan).records(sources)
      inputs/   paths, folders, stdin, URIs → Sources → bytes → RGB uint8 at the input size
      engines/  batches of pixels → a runtime → records, in input order (local threads or Ray)
      runtimes/ keras, onnx or openvino: uint8 batch → scores or features (ONNX exported and cached once)
      model/    the network as data: stage table, weight files, head, class index, Grad-CAM
      records   Record / Prediction: the one schema every sink writes
      outputs/  formats (one table), sinks, shards, destination, resume → the Report → ExitStatus

The Python API (``api``: ``Classifier``) and the server (``server``) hold an engine open across
calls; they are imported on first use, so ``--help`` stays light.
"""

from __future__ import annotations

__all__ = ["Classifier", "InputError", "Prediction", "Record"]


def __getattr__(name: str):
    """``from resnet_cli import Classifier``, imported when asked for (PEP 562)."""
    if name in ("Classifier", "InputError"):
        from .api import Classifier, InputError

        return {"Classifier": Classifier, "InputError": InputError}[name]
    if name in ("Prediction", "Record"):
        from .records import Prediction, Record

        return {"Prediction": Prediction, "Record": Record}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
