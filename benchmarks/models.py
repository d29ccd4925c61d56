"""The family's speed (issues #24, #25): img/s of each member's graph, fp32 and int8 (on
OpenVINO: NNCF's int8 graph), on ONNX Runtime and OpenVINO, run bare through the project's
own session settings on a batch of 32 real photos, in one run, and each ÷ ResNet50's. Random
but well-scaled weights in each official layout (speed does not depend on the values);
BENCH_SECONDS per measurement as in bench.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # weight_files: official layouts from any weights
from bench import ENV, ROOT, SECONDS, WORK, throughput, weights_file  # noqa: E402
from table import machine, print_table, record, say  # noqa: E402


def member_file(name: str, photos: np.ndarray) -> Path:
    """A weight file of ``name`` in its official layout (ResNet50: bench's classic file)."""
    from weight_files import well_scaled, write_weights

    from resnet_cli.model.resnet import resnet
    from resnet_cli.model.spec import DEFAULT_MODEL, architecture, default_weights, file_name

    if name == DEFAULT_MODEL:
        return weights_file()
    path = WORK / "family" / file_name(name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        spec = default_weights(name)
        model = resnet(
            name, preprocess=spec.preprocessing, pool1_padding=spec.pool1_padding, bn_epsilon=spec.bn_epsilon
        )
        weights = well_scaled(model, photos, seed=1, top_layer=architecture(name).top_layer)
        write_weights(path, weights, "keras", ["input_1", *weights])
    return path


def main() -> None:
    import os

    os.environ.update(ENV)
    from resnet_cli.config import resolve
    from resnet_cli.inputs.decode import decode
    from resnet_cli.model.spec import MODEL_NAMES, multiply_adds
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import open_session

    say(f"machine: {machine()}")
    photos = np.stack([decode(str(p)) for p in sorted((ROOT / "sample_images").glob("*.jpg"))])
    batch = np.concatenate([photos] * (32 // len(photos) + 1))[:32]
    rates: dict[tuple[str, str], float] = {}
    openvino = importlib.util.find_spec("openvino") is not None
    for name in MODEL_NAMES:
        config = resolve(ModelRequest(model=name, weights=str(member_file(name, photos[:6])), runtime="onnx"))
        for precision in ("fp32", "int8"):
            session = open_session(ensure_onnx_model(dataclasses.replace(config, precision=precision)))
            runs = {f"onnx {precision}": lambda b, s=session: s.run(None, {"images": b})}
            if openvino:
                from resnet_cli.runtimes.model_cache import ensure_openvino_int8
                from resnet_cli.runtimes.openvino_runtime import compile_model

                graph = (ensure_openvino_int8 if precision == "int8" else ensure_onnx_model)(
                    dataclasses.replace(config, precision=precision)
                )
                request = compile_model(graph, precision).create_infer_request()
                runs[f"openvino {precision}"] = lambda b, r=request: r.infer({0: b})
            for engine, call in runs.items():
                rates[name, engine] = throughput(call, batch)
                record(
                    f"{name} {engine}, batch 32",
                    f"{rates[name, engine]:.1f} img/s",
                    f"÷ resnet50 {rates[name, engine] / rates['resnet50', engine]:.2f}; "
                    f"{multiply_adds(name) / 1e9:.2f} GMACs",
                )
        for engine in ("onnx", "openvino") if openvino else ("onnx",):
            record(
                f"{name} {engine} int8 ÷ fp32", f"{rates[name, f'{engine} int8'] / rates[name, f'{engine} fp32']:.2f}"
            )
    print_table(
        f"The family on ONNX Runtime and OpenVINO (int8: NNCF's graph) ({SECONDS:.0f} s a measurement), "
        f"machine: {machine()}",
        "models",
    )


if __name__ == "__main__":
    main()
