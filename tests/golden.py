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


def records(weights: Path, variant: str) -> list[str]:
    """JSON lines of one variant, each path cut to its file name (the folders differ by machine)."""
    from click.testing import CliRunner

    from resnet_cli.cli import main

    args = ["-q", "-f", "jsonl", "-b", "16", "--weights", str(weights), *VARIANTS[variant], *map(str, photos())]
    result = CliRunner().invoke(main, args)
    if result.exit_code != 0:
        raise RuntimeError(f"{variant}: exit {result.exit_code}: {result.stderr}")
    lines = []
    for line in result.stdout.splitlines():
        record = json.loads(line)
        record["path"] = Path(record["path"]).name
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def fingerprint(weights: Path) -> dict:
    """What makes float results bit-identical: the weight file, the CPU's vector units, the
    numeric packages. Where any differs, records may differ in the last bits."""
    import importlib.metadata
    import platform

    from resnet_cli.cache import hash_of

    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    return {
        "weights_md5": hash_of(weights),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")),
        "machine": platform.machine(),
        "packages": {p: importlib.metadata.version(p) for p in ("numpy", "onnxruntime", "onnx", "tensorflow", "keras", "pillow")},
    }


if __name__ == "__main__":
    weights, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:
        (out / f"{name}.jsonl").write_text("".join(line + "\n" for line in records(weights, name)))
        print(name, "done", file=sys.stderr)
    (out / "fingerprint.json").write_text(json.dumps(fingerprint(weights), indent=1) + "\n")
