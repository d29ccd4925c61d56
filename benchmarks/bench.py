"""`make bench`: one run, one table. Ratios are measured side by side in this run.

Weights: the real file if this machine has it, else a random-weight file in the classic layout
(speed does not depend on the values). Folder throughput uses JPEGs made from the sample images
at realistic sizes. Set BENCH_SECONDS to trade time for precision (default 6 s a measurement).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
# End-to-end rows: the median of this many CLI runs (one run's rate moved ±25 % on a shared
# machine; the bare rates already average over SECONDS).
E2E_RUNS = 3
CLI = [sys.executable, "-m", "resnet_cli"]
# Batch 16, JSON lines into the bench's own file (replaced each run: --overwrite).
TO_JSONL = ["-b", "16", "-f", "jsonl", "--overwrite", "-o", str(WORK / "out.jsonl")]
# Bytecode written and used, as a `pip install` leaves the package (PYTHONDONTWRITEBYTECODE, set
# on some machines, would add ~0.1 s of compiling our modules to every cold start).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(RESNET_CLI_CACHE=str(WORK / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
from table import cosines, machine, physical_limits, record, say  # noqa: E402
from table import print_table as _print_table  # noqa: E402


def throughput(call, batch: np.ndarray) -> float:
    """Images per second of ``call(batch)``, after one warm-up call."""
    call(batch)
    count, start = 0, time.perf_counter()
    while True:
        call(batch)
        count += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= SECONDS and count >= 2 * len(batch):
            return count / elapsed


def weights_file() -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    real = os.environ.get("RESNET_CLI_WEIGHTS") or str(
        Path.home() / ".keras/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    )
    if Path(real).is_file():
        return Path(real)
    path = WORK / "random_classic.h5"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        from weight_files import random_weights, write_weights

        from resnet_cli.inputs.decode import decode

        images = np.stack([decode(str(p)) for p in sorted((ROOT / "sample_images").glob("*.jpg"))])
        names = json.loads((ROOT / "tests/data/classic_layer_names.json").read_text())
        write_weights(path, random_weights(images), "classic", names)
    return path


def photo_folder(name: str, size: tuple[int, int], count: int) -> Path:
    from PIL import Image

    folder = WORK / name
    if folder.exists() and len(list(folder.iterdir())) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = [Image.open(p).convert("RGB") for p in sorted((ROOT / "sample_images").glob("*.jpg"))]
    for i in range(count):
        image = sources[i % len(sources)].resize(size, Image.Resampling.BILINEAR)
        image.save(folder / f"photo{i:04d}.jpg", quality=90)
    return folder


def run_cli(args: list[str]) -> tuple[float, str, int]:
    """Wall seconds, stderr, and peak RSS (KiB) of one CLI run."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *CLI, *args], capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"CLI failed: {' '.join(args)}\n{done.stderr}")
    lines = done.stderr.strip().splitlines()
    return wall, "\n".join(lines[:-1]), int(lines[-1])


def torch_peer_rates() -> dict | None:
    """The PyTorch peer in its own process (its thread pool must not meet ours), if installed."""
    if importlib.util.find_spec("torch") is None:
        say("PyTorch peer skipped: torch is not installed (pip install -e '.[bench]')")
        return None
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/torch_peer.py")], capture_output=True, text=True, env=ENV
    )
    if done.returncode != 0:
        say(f"PyTorch peer failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout)


def ray_engine_rates(
    weights: Path, folder: Path, actors: int | None = None, threads: int = 0
) -> tuple[float, float, float, float]:
    """(seconds to the first record incl. ray.init, img/s after it, whole-run img/s, wall s)."""
    from resnet_cli.config import resolve
    from resnet_cli.engines import ray_cluster, ray_pool
    from resnet_cli.inputs.discover import discover
    from resnet_cli.plan import make_plan
    from resnet_cli.request import EngineOptions, InputOptions, ModelRequest

    config = resolve(ModelRequest(weights=str(weights), runtime="onnx", precision="int8", threads=threads), local=False)
    inputs = InputOptions(inputs=(str(folder),), quiet=True)
    asked = EngineOptions(engine="ray", batch_size=16, ray_actors=actors)
    start = time.perf_counter()
    first, count = None, 0
    for _ in ray_pool.records(make_plan(config, inputs, asked), discover(inputs.inputs)):
        count += 1
        first = first or time.perf_counter()
    end = time.perf_counter()
    ray_cluster.import_ray().shutdown()
    return first - start, (count - 1) / (end - first), count / (end - start), end - start


def ray_rates(wflag: list[str], weights: Path) -> None:
    """The ray engine's own overhead on one node, and r for the cost model. The engine hands out
    blocks of up to 256 photos, so records arrive in bursts: the steady rate is the marginal one
    between two run sizes, (N2 − N1) ÷ (T2 − T1), and start-up the intercept T1 − N1 ÷ rate."""
    say("ray engine on this machine (one node: the engine's own overhead; r for the cost model)")
    folders = {n: photo_folder(f"jpeg_500x375_{n}", (500, 375), n) for n in (576, 1152)}
    wall, stderr, _ = run_cli([*wflag, "--runtime", "onnx", "--precision", "int8", *TO_JSONL, str(folders[576])])
    local = rate_of(stderr)
    cores = os.cpu_count() or 1
    record(
        "end-to-end --engine local onnx int8, 576 × 500x375",
        f"{local:.1f} img/s",
        f"({local / cores:.1f} img/s per core)",
    )
    for actors, threads, what in ((None, 0, "the plan's actor (every core)"), (1, 1, "one 1-thread actor")):
        walls = {n: ray_engine_rates(weights, folder, actors, threads)[3] for n, folder in folders.items()}
        steady = (1152 - 576) / (walls[1152] - walls[576])
        startup = walls[576] - 576 / steady
        used = threads or cores
        record(
            f"--engine ray onnx int8, {what}, steady state",
            f"{steady:.1f} img/s",
            f"(÷ local engine {steady / local:.2f}; r = {steady / used:.1f} img/s per actor core; 576 in "
            f"{walls[576]:.1f} s, 1152 in {walls[1152]:.1f} s)",
        )
        record(
            f"--engine ray start-up, {what} (local Ray, actor, model)",
            f"{startup:.1f} s",
            "(intercept of the two runs)",
        )


def labeled_folder(count: int) -> Path:
    """``count`` 500×375 JPEGs in 4 class folders (the samples grey or tinted red/green/blue)."""
    from PIL import Image, ImageOps

    folder = WORK / f"labeled_{count}"
    if folder.exists() and sum(1 for _ in folder.rglob("*.jpg")) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    tints = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220), "grey": None}
    sources = [
        ImageOps.grayscale(Image.open(p).convert("RGB")).convert("RGB").resize((500, 375))
        for p in sorted((ROOT / "sample_images").glob("*.jpg"))
    ]
    for i in range(count):
        name, colour = list(tints.items())[i % 4]
        (folder / name).mkdir(parents=True, exist_ok=True)
        photo = sources[(i // 4) % len(sources)].rotate((i // 4) * 7 % 360)
        image = photo if colour is None else Image.blend(photo, Image.new("RGB", photo.size, colour), 0.35)
        image.save(folder / name / f"photo{i:04d}.jpg", quality=90)
    return folder


def head_rates(wflag: list[str]) -> None:
    """train vs embed on 1,000 labeled photos; classify with a head vs without."""
    say("heads: train on 1,000 photos vs embed; classify with a head")
    folder = labeled_folder(1000)
    embed_wall, _, _ = run_cli([*wflag, "embed", "-q", "-r", "-b", "16", str(folder), "-o", str(WORK / "features.npz")])
    train_wall, _, _ = run_cli([*wflag, "train", "-q", "-b", "16", str(folder), "-o", str(WORK / "head.npz")])
    record(
        "`train` on 1,000 photos (4 classes), wall",
        f"{train_wall:.1f} s",
        f"(÷ `embed` on the same photos {train_wall / embed_wall:.2f}; embed {embed_wall:.1f} s)",
    )
    photos = photo_folder("jpeg_500x375", (500, 375), 192)
    plain = rate_of(run_cli([*wflag, *TO_JSONL, str(photos)])[1])
    headed = rate_of(
        run_cli(
            [
                *wflag,
                "--head",
                str(WORK / "head.npz"),
                *TO_JSONL,
                str(photos),
            ]
        )[1]
    )
    record(
        "end-to-end fp32 (runtime auto) with --head, 500x375",
        f"{headed:.1f} img/s",
        f"(÷ without a head {headed / plain:.2f}; without {plain:.1f} img/s)",
    )


def judged_photos() -> np.ndarray:
    """Real photos to judge int8 by: the ImageNet dev photos where ../shared is beside the repo,
    else the samples."""
    from resnet_cli.inputs.decode import decode

    dev = sorted((ROOT.parent / "shared/images/imagenet-dev").glob("*.JPEG"))[:48]
    return np.stack([decode(str(p)) for p in dev or sorted((ROOT / "sample_images").glob("*.jpg"))])


def int8_forms(config, batch: np.ndarray, limit: float) -> None:
    """Each int8 form (8-bit weights: exact with VNNI/AMX; 7-bit: exact everywhere) on this CPU:
    model-only rate ÷ fp32 and the pooled-feature cosine to fp32 on real photos, ONNX Runtime's
    QDQ graph and (where installed) OpenVINO's NNCF graph; which one the CLI builds here."""
    import dataclasses

    from resnet_cli.backend import cpu_flags
    from resnet_cli.config import int8_weight_bits
    from resnet_cli.runtimes.model_cache import ensure_onnx_model, ensure_openvino_int8
    from resnet_cli.runtimes.onnx_runtime import open_session

    say("int8 forms on this CPU (model only, batch 16; cosine of pooled features to fp32)")
    photos, features = judged_photos(), config.features()
    built = int8_weight_bits(cpu_flags())

    def onnx(cfg):
        session = open_session(ensure_onnx_model(cfg, quiet=True))
        return lambda x: session.run(None, {"images": x})[0]

    runners = {"onnx": onnx}
    if importlib.util.find_spec("openvino") is not None:
        from resnet_cli.runtimes.openvino_runtime import compile_model

        def openvino(cfg):
            graph = ensure_openvino_int8(cfg, quiet=True) if cfg.precision == "int8" else ensure_onnx_model(cfg, True)
            request = compile_model(graph, cfg.precision).create_infer_request()
            return lambda x: request.infer({0: x})[0]

        runners["openvino"] = openvino
    for runtime, open_model in runners.items():
        fp32_rate = throughput(open_model(config), batch)
        reference = open_model(features)(photos)
        for bits in (8, 7):
            form = dataclasses.replace(config, precision="int8", weight_bits=bits)
            rate = throughput(open_model(form), batch)
            got = open_model(dataclasses.replace(form, include_top=False, pooling="avg"))(photos)
            cosine = cosines(got, reference)
            record(
                f"int8 {bits}-bit weights on {runtime}{' (what the CLI builds here)' if bits == built else ''}",
                f"{rate:.1f} img/s",
                f"(÷ {runtime} fp32 {rate / fp32_rate:.2f}; {rate / limit:.2f} of the int8 limit; pooled cosine to "
                f"fp32 on {len(photos)} photos min {cosine.min():.5f}, median {np.median(cosine):.5f})",
            )


def print_table() -> None:
    partial = os.environ.get("BENCH_ONLY")  # a section's quick re-measure leaves the results file alone
    _print_table(
        f"Machine: {machine()}; Python {platform.python_version()}; BENCH_SECONDS={SECONDS:g}",
        None if partial else "bench",
    )


def rate_of(stderr: str) -> float:
    return float(re.search(r"\(([\d.]+) images/s", stderr).group(1))


def main() -> None:
    WORK.mkdir(exist_ok=True)
    say(f"machine: {machine()}")
    weights = weights_file()
    wflag = ["--weights", str(weights)]
    if os.environ.get("BENCH_ONLY") == "heads":  # one section, for a quick re-measure
        head_rates(wflag)
        return print_table()
    if os.environ.get("BENCH_ONLY") == "ray":
        ray_rates(wflag, weights)
        return print_table()
    from resnet_cli.inputs.decode import decode

    photos = np.stack([decode(str(p)) for p in sorted((ROOT / "sample_images").glob("*.jpg"))])

    def batch_of(n: int) -> np.ndarray:
        return np.ascontiguousarray(np.resize(photos, (n, 224, 224, 3)))

    # ---------------------------------------------------------------- model only
    say("model only (images/s)")
    import dataclasses

    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import open_session

    os.environ["RESNET_CLI_CACHE"] = ENV["RESNET_CLI_CACHE"]
    config = resolve(ModelRequest(weights=str(weights), runtime="onnx"))
    sessions = {p: open_session(ensure_onnx_model(dataclasses.replace(config, precision=p))) for p in ("fp32", "int8")}
    compiled = {}
    if importlib.util.find_spec("openvino") is not None:
        from resnet_cli.runtimes.model_cache import ensure_openvino_int8
        from resnet_cli.runtimes.openvino_runtime import compile_model

        for p in ("fp32", "bf16"):
            compiled[p] = compile_model(ensure_onnx_model(config), p).create_infer_request()
        int8 = dataclasses.replace(config, precision="int8")
        compiled["int8"] = compile_model(ensure_openvino_int8(int8), "int8").create_infer_request()  # NNCF's graph
        compiled["int8 (our QDQ graph)"] = compile_model(ensure_onnx_model(int8), "int8").create_infer_request()
    from resnet_cli.model.spec import multiply_adds

    limits = physical_limits(multiply_adds(config.model))
    for precision, (limit, how) in limits.items():
        record(f"physical limit {precision}", f"{limit:.1f} img/s", f"({how})")
    int8_forms(config, batch_of(16), limits["int8"][0])

    def of_limit(name: str, rate: float) -> str:
        precision = next((p for p in ("int8", "bf16") if p in name), "fp32")
        return f"{rate / limits[precision][0]:.2f} of the {precision} limit"

    # The engines first, before TensorFlow is imported and has run (its thread pools would share
    # the cores with them): then the Keras rows.
    rates = {}
    for batch in (1, 16, 64):
        x = batch_of(batch)
        for p, session in sessions.items():
            rates[f"ours onnx {p}", batch] = throughput(lambda b, s=session: s.run(None, {"images": b}), x)
        for p, request in compiled.items():
            rates[f"ours openvino {p}", batch] = throughput(lambda b, r=request: r.infer({0: b}), x)
    from resnet_cli.backend import import_keras
    from resnet_cli.runtimes.keras_runtime import build_model

    keras = import_keras()
    ours = build_model(config)
    reference = keras.applications.ResNet50(weights=None)
    for batch in (1, 16, 64):
        x = batch_of(batch)
        xf = x.astype("float32")[..., ::-1] - np.array(config.mean_bgr, "float32")
        rates["keras.applications predict", batch] = throughput(
            lambda b, batch=batch: reference.predict(b, verbose=0, batch_size=batch),  # noqa: F821 (del below)
            xf,
        )
        rates["ours keras", batch] = throughput(ours.predict_on_batch, x)
        names = ["keras.applications predict", "ours keras", "ours onnx fp32", "ours onnx int8"]
        for name in [*names, *(f"ours openvino {p}" for p in compiled)]:
            ratio = rates[name, batch] / rates["keras.applications predict", batch]
            record(
                f"model-only {name}, batch {batch}",
                f"{rates[name, batch]:.1f} img/s",
                f"(× {ratio:.2f} of keras.applications; × {rates[name, batch] / rates['ours onnx fp32', batch]:.2f} of "
                f"ours onnx fp32; {of_limit(name, rates[name, batch])})",
            )
    del ours, reference
    from resnet_cli.backend import cpu_has_bf16

    bf16 = build_model(dataclasses.replace(config, precision="bf16"))
    rate = throughput(bf16.predict_on_batch, batch_of(16))
    hardware = "AVX512-BF16/AMX" if cpu_has_bf16() else "no bf16 hardware: emulated, so the CLI falls back to fp32"
    record(
        "model-only ours keras bf16 (mixed_bfloat16), batch 16",
        f"{rate:.1f} img/s",
        f"(× {rate / rates['ours keras', 16]:.2f} of ours keras fp32; {hardware})",
    )
    del bf16
    peer = torch_peer_rates()
    for batch in (1, 16, 64) if peer else ():
        rate = peer[str(batch)]
        record(
            f"model-only peer: PyTorch {peer['torch']} ResNet50 (TorchScript frozen, channels_last), batch {batch}",
            f"{rate:.1f} img/s",
            f"(× {rate / rates['keras.applications predict', batch]:.2f} of keras.applications; ours onnx fp32 ÷ "
            f"it {rates['ours onnx fp32', batch] / rate:.2f})",
        )

    # ---------------------------------------------------------------- end to end
    say(f"end to end (folder of JPEGs, decode overlapped with inference; median of {E2E_RUNS} runs)")
    folders = {
        "500x375": photo_folder("jpeg_500x375", (500, 375), 192),
        "4000x3000": photo_folder("jpeg_4000x3000", (4000, 3000), 32),
    }

    jpegs = sorted(folders["500x375"].iterdir())[:48]
    start = time.process_time()
    for path in jpegs:
        decode(str(path))
    decode_s = (time.process_time() - start) / len(jpegs)  # CPU time, one thread
    cores = os.cpu_count() or 1
    record(
        "decode one 500x375 JPEG to the model's input (CPU time)",
        f"{decode_s * 1000:.1f} ms",
        f"(the pipeline's bound where the engine alone fills all {cores} cores: 1 / (1 + decode × bare rate / cores))",
    )

    def bound(bare: float) -> str:
        return f"; bound {1 / (1 + decode_s * bare / cores):.2f}"

    def of_openvino(rate: float) -> str:
        """The issue's yardstick: OpenVINO fp32 run bare on our graph, batch 16."""
        bare = rates.get(("ours openvino fp32", 16))
        return f"; ÷ openvino fp32 bare {rate / bare:.2f}" if bare else ""

    e2e = {}
    runs = [("keras", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]
    runs += [("openvino", p) for p in compiled if "QDQ" not in p]
    for runtime, precision in runs:
        for label, folder in folders.items():
            if label == "4000x3000" and runtime == "openvino":
                continue  # the decode-bound case: the engine does not matter there
            extra = ["--fast-decode"] if label == "4000x3000" else []
            args = [*wflag, "--runtime", runtime, "--precision", precision, *TO_JSONL, *extra, str(folder)]
            runs = [run_cli(args) for _ in range(E2E_RUNS)]
            rate = statistics.median(rate_of(stderr) for _, stderr, _ in runs)
            rss = max(rss for *_, rss in runs)
            model_rate = rates[f"ours {runtime}" + ("" if runtime == "keras" else f" {precision}"), 16]
            e2e[runtime, precision, label] = rate
            fp32 = e2e.get((runtime, "fp32", label))
            of_fp32 = f"÷ {runtime} fp32 end to end {rate / fp32:.2f}; " if precision != "fp32" and fp32 else ""
            record(
                f"end-to-end {runtime} {precision}, {label}{' --fast-decode' if extra else ''}",
                f"{rate:.1f} img/s",
                f"({of_fp32}÷ model-only {rate / model_rate:.2f}{bound(model_rate) if not extra else ''}; "
                f"× {rate / rates['keras.applications predict', 16]:.2f} "
                f"of keras.applications; {of_limit(precision, rate)}{of_openvino(rate)}; "
                f"peak RSS {rss / 1024:.0f} MiB)",
            )

    # ---------------------------------------------------------------- ray engine
    if importlib.util.find_spec("ray") is not None:
        ray_rates(wflag, weights)

    head_rates(wflag)

    # ---------------------------------------------------------------- cold start
    say("cold start (median of 5)")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "resnet_cli")], check=True, env=ENV)
    elephant = str(ROOT / "sample_images/elephant.jpg")

    def median_wall(args, n=5):
        return statistics.median(run_cli(args)[0] for _ in range(n))

    record("`resnet-classify --help`", f"{median_wall(['--help']):.2f} s")
    imports = statistics.median(
        (
            lambda s: (
                subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, env=ENV),
                time.perf_counter() - s,
            )[1]
        )(time.perf_counter())
        for _ in range(3)
    )
    record("`python -c 'import tensorflow'`", f"{imports:.2f} s")
    for runtime in ("auto", "onnx", "keras", *(["openvino"] if compiled else [])):
        record(
            f"cold `resnet-classify --runtime {runtime} elephant.jpg`",
            f"{median_wall([*wflag, '--runtime', runtime, elephant]):.2f} s",
            "" if runtime == "keras" else "(model cached)",
        )

    print_table()


if __name__ == "__main__":
    main()
