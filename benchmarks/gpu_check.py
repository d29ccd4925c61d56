"""The GPU check (issue #16): one script, one table, in under 8 minutes on a lent GPU machine.

    python benchmarks/gpu_check.py --device gpu            # on the GPU machine (see README "GPU")
    python benchmarks/gpu_check.py --device cpu --small    # here: the same code on the CPU, small sizes

It prints, for fp32 and bf16 at each batch size: model-only img/s (the keras runtime's own
call on a fixed batch, compiled once) and end-to-end img/s (the local engine: generated
500×375 JPEGs decoded on every core, batched, run; the clock starts after the warm-up), the
decode ceiling (threads and processes, no model), top-5 agreement with a CPU fp32 run on the
dev photos, and the cosine between bf16's and fp32's pooled features on them (median, min).
``--json FILE`` writes the same as JSON.

Weights: $RESNET_CLI_WEIGHTS or --weights if given, else a random-weight file in the classic
layout (speed does not depend on the values; agreement and cosine are then judged on random
weights, whose margins are far smaller than trained ones').
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from table import cosines, machine, print_table, record, say  # noqa: E402


def weights_file(work: Path, given: str | None) -> Path:
    given = given or os.environ.get("RESNET_CLI_WEIGHTS")
    if given:
        return Path(given)
    path = work / "random_classic.h5"
    if not path.exists():
        sys.path.insert(0, str(ROOT / "tests"))  # test scaffolding: weight files in the official layouts
        from weight_files import random_weights, write_weights

        from resnet_cli.inputs.decode import decode

        samples = np.stack([decode(str(p)) for p in sorted((ROOT / "sample_images").glob("*.jpg"))])
        write_weights(path, random_weights(samples))
    return path


def jpeg_folder(work: Path, unique: int, total: int) -> Path:
    """``total`` 500×375 JPEG names (``unique`` files, the rest hard links: decoding cost is
    the same, generating them is not)."""
    from PIL import Image

    folder = work / f"jpeg_500x375_{unique}_{total}"
    if folder.exists() and sum(1 for _ in folder.iterdir()) == total:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(p).convert("RGB") for p in sorted((ROOT / "sample_images").glob("*.jpg"))]
    for i in range(unique):
        photo = sources[i % len(sources)].rotate(i * 13 % 360).resize((500, 375))
        photo.save(folder / f"p{i:06d}.jpg", quality=90)
    for i in range(unique, total):
        target = folder / f"p{i:06d}.jpg"
        if not target.exists():
            os.link(folder / f"p{i % unique:06d}.jpg", target)
    return folder


def dev_photos(given: str | None, limit: int) -> list[str]:
    candidates = (
        [given]
        if given
        else [
            str(ROOT.parent / "shared/images/imagenet-dev"),
            str(ROOT / ".bench/imagenet-dev"),
            str(ROOT / "sample_images"),
        ]
    )
    for folder in candidates:
        photos = sorted(str(p) for p in Path(folder).glob("*") if p.suffix.lower() in (".jpeg", ".jpg"))
        if photos:
            return photos[:limit]
    raise SystemExit(f"no dev photos in {candidates}")


def model_only(runtime, batch: np.ndarray, seconds: float) -> float:
    runtime.predict(batch)  # compile
    runtime.predict(batch)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        runtime.predict(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def end_to_end(runtime, config, folder: Path, batch: int, workers: int) -> float:
    from resnet_cli.engines.local import prediction_records, run
    from resnet_cli.inputs.discover import discover

    runtime.predict(np.zeros((batch, config.input_size, config.input_size, 3), np.uint8))  # compiled before the clock
    count, start = 0, time.perf_counter()
    for result in run(discover([str(folder)]), runtime.predict, prediction_records(5), config.decode, batch, workers):
        count += result.ok
    return count / (time.perf_counter() - start)


def _decode_chunk(args):
    from resnet_cli.inputs.decode import decode

    paths, options = args
    for path in paths:
        decode(path, options)
    return len(paths)


def decode_ceiling(config, folder: Path, workers: int) -> tuple[float, float]:
    """img/s decoding the folder with no model: the pipeline's threads, and a process pool."""
    from resnet_cli.engines.local import decoded_batches
    from resnet_cli.inputs.discover import discover

    start, count = time.perf_counter(), 0
    for chunk, _ in decoded_batches(discover([str(folder)]), config.decode, 256, workers):
        count += len(chunk)
    threads = count / (time.perf_counter() - start)
    paths = sorted(str(p) for p in folder.iterdir())
    chunks = [(paths[i : i + 64], config.decode) for i in range(0, len(paths), 64)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_decode_chunk, chunks[:workers]))  # start the workers first
        start = time.perf_counter()
        count = sum(pool.map(_decode_chunk, chunks))
    return threads, count / (time.perf_counter() - start)


def cpu_reference(weights: Path, photos: list[str]) -> list[list[int]]:
    """Top-5 class indices from a CPU fp32 run of the CLI (its own process: the device is
    per process)."""
    command = [
        sys.executable,
        "-m",
        "resnet_cli",
        "--device",
        "cpu",
        "--runtime",
        "keras",
        "--weights",
        str(weights),
        "-f",
        "jsonl",
        "-q",
        "-k",
        "5",
        "-b",
        "25",
        *photos,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))),
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"the CPU reference run failed:\n{done.stderr}")
    return [[p["index"] for p in json.loads(line)["predictions"]] for line in done.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("gpu", "cpu", "auto"), default="gpu")
    parser.add_argument("--small", action="store_true", help="small sizes, for a quick run on a CPU")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 64,256; --small: 8)")
    parser.add_argument("--photos", type=int, default=None, help="end-to-end photo count (default 20000; --small: 32)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per model-only measurement (default 5; --small: 0.5)"
    )
    parser.add_argument(
        "--dev", default=None, help="folder of dev photos (default: ../shared/images/imagenet-dev, .bench/imagenet-dev)"
    )
    parser.add_argument("--dev-count", type=int, default=None, help="dev photos used (default 100; --small: 8)")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--work", default=str(ROOT / ".bench" / "gpu"))
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    batches = [int(b) for b in (args.batches or ("8" if args.small else "64,256")).split(",")]
    total = args.photos or (32 if args.small else 20000)
    seconds = args.seconds or (0.5 if args.small else 5.0)
    dev_count = args.dev_count or (8 if args.small else 100)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RESNET_CLI_CACHE", str(work / "cache"))

    from resnet_cli.backend import gpu_name, import_keras
    from resnet_cli.config import resolve
    from resnet_cli.inputs.decode import decode
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.keras_runtime import KerasRuntime, build_model

    started = time.perf_counter()
    weights = weights_file(work, args.weights)
    config = resolve(ModelRequest(weights=str(weights), device=args.device, runtime="keras"))
    keras = import_keras(config.device)
    device = f"{gpu_name(keras)}" if config.device == "gpu" else "CPU"
    cores = os.cpu_count() or 1
    say(
        f"device: {device}; Keras {keras.__version__} on {keras.backend.backend()}; CPU: {machine()}; Python "
        f"{platform.python_version()}"
    )
    folder = jpeg_folder(work, min(total, 500), total)
    photos = dev_photos(args.dev, dev_count)
    results: dict = {
        "device": device,
        "backend": keras.backend.backend(),
        "cores": cores,
        "cpu": machine(),
        "photos": total,
        "rates": {},
    }

    say("decode ceiling (no model)")
    threads, processes = decode_ceiling(config, folder, cores)
    record(f"decode only, {cores} threads (the pipeline)", f"{threads:.0f} img/s", f"({threads / cores:.0f} per core)")
    record(f"decode only, {cores} processes", f"{processes:.0f} img/s", f"(÷ threads {processes / threads:.2f})")
    results["decode"] = {"threads": threads, "processes": processes}

    sample = np.stack([decode(p, config.decode) for p in photos])
    for precision in ("fp32", "bf16"):
        cfg = dataclasses.replace(config, precision=precision)
        model = build_model(cfg)
        for batch in batches:
            runtime = KerasRuntime(model, batch)
            x = np.ascontiguousarray(np.resize(sample, (batch, *sample.shape[1:])))
            alone = model_only(runtime, x, seconds)
            e2e = end_to_end(runtime, cfg, folder, batch, cores)
            results["rates"][f"{precision}/{batch}"] = {"model_only": alone, "end_to_end": e2e}
            record(f"{precision}, batch {batch}: model only", f"{alone:.0f} img/s")
            record(
                f"{precision}, batch {batch}: end to end, {total} JPEGs 500×375",
                f"{e2e:.0f} img/s",
                f"(÷ model only {e2e / alone:.2f}; decode ceiling {max(threads, processes):.0f})",
            )
        del model

    say("fidelity on the dev photos")
    fp32 = KerasRuntime(build_model(config), min(len(photos), 32))
    ours = [list(row) for row in np.argsort(-fp32.predict(sample), axis=1, kind="stable")[:, :5]]
    reference = cpu_reference(weights, photos)
    same = sum(a == b for a, b in zip(ours, reference))
    record(f"fp32 top-5 identical to the CPU fp32 run ({device} vs CPU)", f"{same}/{len(photos)}")
    features = {
        p: KerasRuntime(build_model(dataclasses.replace(config.features(), precision=p)), min(len(photos), 32))
        .predict(sample)
        .astype(np.float64)
        for p in ("fp32", "bf16")
    }
    cosine = cosines(features["fp32"], features["bf16"])
    record(
        "bf16 pooled-feature cosine to fp32 (median, min)",
        f"{statistics.median(cosine):.5f}, {cosine.min():.5f}",
        f"({len(photos)} photos)",
    )
    results.update(
        top5_identical=same,
        dev_photos=len(photos),
        bf16_cosine_median=float(statistics.median(cosine)),
        bf16_cosine_min=float(cosine.min()),
    )
    results["seconds"] = time.perf_counter() - started

    print_table(
        f"Device: {device}; Keras {keras.__version__} on {keras.backend.backend()}; CPU: {machine()}; "
        f"{results['seconds']:.0f} s in all",
        None,  # its JSON (--json) is the record; the docs' GPU table is filled from it
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
