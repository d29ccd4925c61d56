"""Records of every runtime, precision and engine on the same photos and weights, written by
one version of the code and compared by the next: a refactor must not change a byte.

``python tests/golden.py WEIGHTS OUT_DIR`` writes them; ``test_records_unchanged.py`` compares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "keras-fp32": ["--runtime", "keras"],
    "onnx-fp32": ["--runtime", "onnx"],
    "onnx-int8": ["--runtime", "onnx", "--precision", "int8"],
    "ray-onnx-fp32": ["--engine", "ray", "--runtime", "onnx"],
}


def photos() -> list[Path]:
    """The sample photos, and the 100 ImageNet dev photos where ../shared is beside the repo."""
    dev = ROOT.parent / "shared" / "images" / "imagenet-dev"
    return sorted(ROOT.joinpath("sample_images").glob("*.jpg")) + sorted(dev.glob("*.JPEG"))


# Written through the CLI only (no module of ours imported), so the same script runs on both
# sides of a refactor that moves modules.
COMMANDS = {
    "embed-onnx-fp32": "embed",  # the pooled features, one JSON line per photo
    "head-onnx-fp32": "head",  # train a head on two classes of photos, classify with it
}
# Those ran on --runtime auto while it meant ONNX Runtime on every CPU; now auto takes OpenVINO
# on some, so they name it.
ON_ONNX = ["-q", "--runtime", "onnx"]


def _invoke(args: list[str], what: str) -> str:
    from click.testing import CliRunner

    from resnet_cli.cli import main

    result = CliRunner().invoke(main, args)
    if result.exit_code != 0:
        raise RuntimeError(f"{what}: exit {result.exit_code}: {result.stderr}")
    return result.stdout


def _named(lines) -> list[str]:
    """Each record with its path cut to the file name (the folders differ by machine)."""
    out = []
    for line in lines:
        record = json.loads(line)
        record["path"] = Path(record["path"]).name
        out.append(json.dumps(record, ensure_ascii=False))
    return out


def records(weights: Path, variant: str) -> list[str]:
    """JSON lines of one variant, each path cut to its file name."""
    if variant in COMMANDS:
        return _command_records(weights, variant)
    args = ["-q", "-f", "jsonl", "-b", "16", "--weights", str(weights), *VARIANTS[variant], *map(str, photos())]
    return _named(_invoke(args, variant).splitlines())


def _command_records(weights: Path, variant: str) -> list[str]:
    import tempfile

    import numpy as np
    from PIL import Image, ImageOps

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if COMMANDS[variant] == "embed":
            out = scratch / "features.npz"
            _invoke(
                ["embed", *ON_ONNX, "-b", "16", "--weights", str(weights), "-o", str(out), *map(str, photos())], variant
            )
            with np.load(out) as data:
                return [
                    json.dumps({"path": Path(p).name, "vector": [float(v) for v in row]})
                    for p, row in zip(data["paths"], data["features"])
                ]
        for name, change in (("plain", lambda im: im), ("mirrored", ImageOps.mirror)):
            (scratch / "train" / name).mkdir(parents=True)
            for photo in photos()[:12]:
                change(Image.open(photo).convert("RGB")).save(scratch / "train" / name / f"{photo.stem}.png")
        head = scratch / "head.npz"
        _invoke(
            ["train", *ON_ONNX, "--weights", str(weights), str(scratch / "train"), "-o", str(head), "-f", "json"],
            variant,
        )
        args = [
            *ON_ONNX,
            "-f",
            "jsonl",
            "-b",
            "16",
            "--weights",
            str(weights),
            "--head",
            str(head),
            *map(str, photos()),
        ]
        return _named(_invoke(args, variant).splitlines())


def fingerprint(weights: Path) -> dict:
    """What makes float results bit-identical: the weight file, the CPU's vector units, the
    numeric packages. Where any differs, records may differ in the last bits."""
    import hashlib
    import importlib.metadata
    import os
    import platform

    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    flags = os.environ.get("RESNET_CLI_CPU_FLAGS", "").split() or flags  # the CLI decides by the stand-in
    return {
        "weights_md5": hashlib.md5(weights.read_bytes()).hexdigest(),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")),
        "machine": platform.machine(),
        "packages": {
            p: importlib.metadata.version(p) for p in ("numpy", "onnxruntime", "onnx", "tensorflow", "keras", "pillow")
        },
    }


if __name__ == "__main__":
    weights, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for name in [*VARIANTS, *COMMANDS]:
        (out / f"{name}.jsonl").write_text("".join(line + "\n" for line in records(weights, name)))
        print(name, "done", file=sys.stderr)
    (out / "fingerprint.json").write_text(json.dumps(fingerprint(weights), indent=1) + "\n")
