"""How much --fast-decode (libjpeg reduced-scale decoding) saves, and how far it moves the
input arrays and the top-5, on the ImageNet dev photos and on 4000×3000 camera-size JPEGs.

Usage: python benchmarks/fast_decode.py [WEIGHTS.h5]   (default: the bench's random-weight file)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def measure(paths: list[str], session, resize: str):
    from resnet_cli.inputs.decode import DecodeOptions, decode

    interpolation = "bilinear" if resize == "crop" else "nearest"
    results = {}
    for fast in (False, True):
        start = time.perf_counter()
        options = DecodeOptions(resize=resize, interpolation=interpolation, fast_jpeg=fast)
        arrays = np.stack([decode(p, options) for p in paths])
        results[fast] = (time.perf_counter() - start, arrays)
    (slow_t, full), (fast_t, reduced) = results[False], results[True]
    diff = np.abs(full.astype(np.int16) - reduced.astype(np.int16))
    top = [np.argsort(-session.run(None, {"images": a})[0], axis=1)[:, :5] for a in (full, reduced)]
    same_top1 = float(np.mean(top[0][:, 0] == top[1][:, 0]))
    overlap = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(*top)]))
    return (
        slow_t / len(paths) * 1000,
        fast_t / len(paths) * 1000,
        float(diff.mean()),
        float((diff > 0).mean()),
        same_top1,
        overlap,
    )


def main() -> None:
    from bench import WORK, photo_folder, weights_file

    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import open_session

    os.environ.setdefault("RESNET_CLI_CACHE", str(WORK / "cache"))
    weights = sys.argv[1] if len(sys.argv) > 1 else str(weights_file())
    session = open_session(ensure_onnx_model(resolve(ModelRequest(weights=weights, runtime="onnx"))))
    dev = sorted(str(p) for p in (ROOT.parent / "shared/images/imagenet-dev").glob("*.JPEG"))
    big = sorted(str(p) for p in photo_folder("jpeg_4000x3000", (4000, 3000), 32).glob("*.jpg"))
    print(
        "| photos | resize | full decode ms/img | fast ms/img | speed-up | mean abs pixel diff | pixels changed | "
        "same top-1 | top-5 overlap |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, paths in (("imagenet-dev (100, ~500×375)", dev), ("4000×3000 (32)", big)):
        for resize in ("stretch", "crop"):
            slow, fast, mad, changed, top1, overlap = measure(paths, session, resize)
            print(
                f"| {name} | {resize} | {slow:.1f} | {fast:.1f} | ×{slow / fast:.2f} | {mad:.2f} | {changed:.0%} "
                f"| {top1:.0%} | {overlap:.0%} |"
            )


if __name__ == "__main__":
    main()
