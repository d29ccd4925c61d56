"""models: the family this tool runs — size, cost, preprocessing, Keras' published accuracy,
the official weight file and whether it is on this machine."""

from __future__ import annotations

import json

from ..errors import ExitStatus
from ..model.spec import ARCHITECTURES, PREPROCESSINGS, default_weights, multiply_adds, parameter_count
from ..model.weights import keras_cache_dirs


def rows() -> list[dict]:
    found = []
    for arch in ARCHITECTURES.values():
        spec = default_weights(arch.name)
        here = next((str(d / spec.file_name) for d in keras_cache_dirs() if (d / spec.file_name).is_file()), None)
        found.append(
            {
                "model": arch.name,
                "depth": arch.depth,
                "version": arch.version,
                "parameters": parameter_count(arch),
                "gmacs": round(multiply_adds(arch, spec.input_size) / 1e9, 2),
                "input_size": spec.input_size,
                "preprocessing": spec.preprocessing,
                "top1": arch.top1,
                "top5": arch.top5,
                "weights": spec.file_name,
                "url": spec.url,
                "md5": spec.md5,
                "on_this_machine": here,
            }
        )
    return found


def models(fmt: str = "table") -> ExitStatus:
    table = rows()
    if fmt == "json":
        print(json.dumps(table, indent=2))
        return ExitStatus.OK
    header = (
        f"{'model':<12} {'depth':>5} {'params':>11} {'GMACs':>6} {'input':>5}  {'prep':<5} {'top-1':>5} {'top-5':>5}"
    )
    print(f"{header}  weights (md5)  here")
    for row in table:
        print(
            f"{row['model']:<12} {row['depth']:>5} {row['parameters']:>11,} {row['gmacs']:>6.2f} "
            f"{row['input_size']:>5}  {row['preprocessing']:<5} {row['top1']:>5.1f} {row['top5']:>5.1f}  "
            f"{row['weights']} ({row['md5']})  {'yes' if row['on_this_machine'] else 'no'}"
        )
    print()
    for name, meaning in PREPROCESSINGS.items():
        print(f"{name}: {meaning}")
    print("top-1/top-5: Keras' published ImageNet validation accuracy of the official weights (%).")
    print("GMACs: multiply-adds of one image (convolutions and the classifier).")
    return ExitStatus.OK
