"""The ray engine against the local engine on real photos and bad files: the same records, one
by one; every record exactly once when a model actor dies mid-run; shards and --resume."""

import dataclasses
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DEV, SAMPLES

from resnet_cli.cli import main
from resnet_cli.plan import make_plan
from resnet_cli.request import EngineOptions

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance on 2 CPUs (no network), shared by the module's tests."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
    )  # never a cluster left running
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Real photos (samples, and ImageNet dev photos when ../shared is there) plus bad files."""
    d = tmp_path_factory.mktemp("photos")
    for path in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(path, d / path.name)
    for path in sorted(DEV.glob("*.JPEG"))[:13]:
        shutil.copy(path, d / path.name)
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("not a photo")
    (d / "truncated.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes()[:3000])
    (d / "README.txt").write_text("skipped: not an image, not named like one")
    return d


RAY = EngineOptions(engine="ray", batch_size=4)


def _ray_run(classic_file, folder):
    """The resolved config and input options of a default ray run over ``folder``."""
    from resnet_cli.config import resolve
    from resnet_cli.request import InputOptions, ModelRequest

    return resolve(ModelRequest(weights=str(classic_file)), local=False), InputOptions(inputs=(str(folder),))


def classify(*args):
    result = CliRunner().invoke(main, ["-q", "-f", "jsonl", "-b", "4", *map(str, args)])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return result, records


def assert_same_records(ours, reference):
    """Record by record: paths, errors and classes exact; scores to float32 rounding."""
    assert [r["path"] for r in ours] == [r["path"] for r in reference]
    for mine, theirs in zip(ours, reference):
        assert mine.get("error") == theirs.get("error"), mine["path"]
        assert [(p["rank"], p["index"], p["wnid"], p["label"]) for p in mine.get("predictions", [])] == [
            (p["rank"], p["index"], p["wnid"], p["label"]) for p in theirs.get("predictions", [])
        ], mine["path"]
        for p, q in zip(mine.get("predictions", []), theirs.get("predictions", [])):
            assert p["score"] == pytest.approx(q["score"], rel=1e-5, abs=1e-7)


@pytest.fixture(scope="module")
def local_records(folder, classic_file):
    result, records = classify("--weights", classic_file, folder)
    assert result.exit_code == 1  # the bad files
    return records


def test_ray_engine_gives_the_local_engine_records(ray_cluster, folder, classic_file, local_records):
    result, records = classify("--engine", "ray", "--weights", classic_file, folder)
    assert result.exit_code == 1, result.stderr
    assert_same_records(records, local_records)
    errors = {r["path"]: r["error"] for r in records if "error" in r}
    assert set(errors) == {str(folder / n) for n in ("empty.jpg", "notes.jpg", "truncated.jpg")}
    assert errors[str(folder / "empty.jpg")] == "empty file (0 bytes)"
    for path in errors:  # one line per bad file on stderr, naming it; no traceback
        assert sum(path in line for line in result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert sum("predictions" in r for r in records) == len(list(folder.glob("*"))) - 4


def test_every_record_exactly_once_when_an_actor_dies(ray_cluster, folder, classic_file, local_records, tmp_path):
    from resnet_cli.engines import ray_pool, ray_worker
    from resnet_cli.inputs.discover import discover

    marker = str(tmp_path / "crashed")

    class CrashOnce(ray_worker.Predictor):
        """Kills its own process on its second batch, the first time only (like an OOM kill)."""

        calls = 0

        def __call__(self, batch):
            self.calls += 1
            if self.calls == 2 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            return super().__call__(batch)

    config, inputs = _ray_run(classic_file, folder)
    skipped = []
    records = ray_pool.records(
        make_plan(config, inputs, RAY), discover(inputs.inputs), on_skip=skipped.append, predictor=CrashOnce
    )
    records = [r.as_dict() for r in records]
    assert os.path.exists(marker), "the actor never crashed: the test proved nothing"
    assert_same_records(records, local_records)
    assert [s.path for s in skipped] == [str(folder / "README.txt")]


def test_shards_and_resume_give_each_file_once(ray_cluster, folder, classic_file, local_records, tmp_path):
    shards = tmp_path / "out"
    first = sorted(folder.glob("*"))[:9]
    result = CliRunner().invoke(
        main,
        ["-q", "-f", "jsonl", "--engine", "ray", "--weights", str(classic_file), "-o", f"{shards}/", *map(str, first)],
    )
    bad = {"empty.jpg", "notes.jpg", "truncated.jpg", "README.txt"} & {p.name for p in first}
    assert result.exit_code == (1 if bad else 0), result.stderr
    result = CliRunner().invoke(
        main,
        [
            "-q",
            "-f",
            "jsonl",
            "--engine",
            "ray",
            "--weights",
            str(classic_file),
            "-o",
            f"{shards}/",
            "--resume",
            str(folder),
        ],
    )
    assert result.exit_code == 1, result.stderr
    parts = sorted(shards.glob("part-*.jsonl"))
    assert [p.name for p in parts] == ["part-00000.jsonl", "part-00001.jsonl"]
    records = [json.loads(line) for part in parts for line in part.read_text().splitlines()]
    by_path = {r["path"]: r for r in records}
    assert len(by_path) == len(records)  # nothing twice
    assert_same_records([by_path[r["path"]] for r in local_records], local_records)  # nothing lost


def test_uris_read_through_pyarrow(ray_cluster, folder, classic_file, local_records):
    """A file:// URI folder (as s3:// or gs:// would be) gives the same records, by URI."""
    result, records = classify("--engine", "ray", "--weights", classic_file, folder.as_uri())
    assert result.exit_code == 1, result.stderr
    local = classify("--weights", classic_file, folder.as_uri())[1]  # the local engine reads URIs too
    assert_same_records(local, records)
    for record in records:
        assert record["path"].startswith("file:///")
        record["path"] = record["path"][len("file://") :]
    assert_same_records(records, local_records)


def test_without_ray_the_engine_says_how_to_install(monkeypatch, classic_file):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    result = CliRunner().invoke(main, ["--engine", "ray", "--weights", str(classic_file), str(SAMPLES / "cat.jpg")])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == 'resnet-classify: error: the ray engine needs Ray: pip install "resnet-cli[ray]"'


def test_an_unreachable_cluster_is_one_line_in_seconds(classic_file):
    """Ray itself retries a wrong address for minutes; we say so at once (fresh process)."""
    import subprocess

    pytest.importorskip("ray", reason="the ray extra is not installed")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "resnet_cli",
            "--engine",
            "ray",
            "--ray-address",
            "127.0.0.1:1",
            "--weights",
            str(classic_file),
            str(SAMPLES / "cat.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3  # its own status: not "some inputs failed"
    assert done.stdout == ""
    assert done.stderr.strip().startswith("resnet-classify: error: cannot reach the Ray cluster at 127.0.0.1:1 (")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_failure_ray_gives_up_on_is_one_user_error(ray_cluster, classic_file):
    """An actor that cannot start (say, the weights missing on that node) ends the run with
    one line naming the cause, not a Ray traceback."""
    from resnet_cli.engines import ray_pool, ray_worker
    from resnet_cli.errors import UserError
    from resnet_cli.inputs.discover import discover

    class Broken(ray_worker.Predictor):
        def __init__(self, **arguments):
            raise OSError("weights file vanished on this node")

    config, inputs = _ray_run(classic_file, SAMPLES)
    with pytest.raises(UserError, match="^the ray engine failed: OSError: weights file vanished on this node$"):
        list(ray_pool.records(make_plan(config, inputs, RAY), discover(inputs.inputs), predictor=Broken))


def test_relative_paths_work_though_workers_run_elsewhere(ray_cluster, folder, classic_file, monkeypatch):
    """Ray's workers started in another folder: they read absolute paths, while records keep
    the relative paths the user typed (as the local engine does)."""
    monkeypatch.chdir(folder.parent)
    relative = folder.name
    local = classify("--weights", os.path.relpath(classic_file), relative)[1]
    result, records = classify("--engine", "ray", "--weights", os.path.relpath(classic_file), relative)
    assert result.exit_code == 1, result.stderr
    assert records[0]["path"].startswith(relative + os.sep)
    assert_same_records(records, local)


def test_inputs_read_a_window_at_a_time_give_the_same_records(
    ray_cluster, folder, classic_file, local_records, monkeypatch
):
    """The driver holds a window of blocks at a time: many windows, blocks of one and two rows,
    two actors taking them in turn, still the local engine's records in its order."""
    from resnet_cli.engines import ray_plan, ray_pool
    from resnet_cli.inputs.discover import discover

    monkeypatch.setattr(ray_plan, "ROWS_PER_TASK", 1)
    config, inputs = _ray_run(classic_file, folder)
    asked = EngineOptions(engine="ray", batch_size=2, ray_actors=2)  # window 5: 5 rows read ahead
    blocks = list(ray_plan.blocks_of(discover(inputs.inputs), ray_plan.Plan(2, actors=2, cpus_per_actor=0.5)))
    assert len(blocks) > 5 and {len(block) for block in blocks} == {1, 2}
    records = [r.as_dict() for r in ray_pool.records(make_plan(config, inputs, asked), discover(inputs.inputs))]
    assert_same_records(records, local_records)


def test_a_head_runs_on_the_ray_engine(ray_cluster, trained_head, tinted, classic_file):
    """--head on --engine ray (int8, as the issue asks): the local engine's records, the head's classes."""
    head, report = trained_head
    photos = sorted((tinted / "test").rglob("*.jpg"))[::5]
    args = ("--head", head, "--precision", "int8", "--weights", classic_file, "-k", 9, *photos)
    result, records = classify("--engine", "ray", *args)
    local, expected = classify(*args)
    assert result.exit_code == 0 and local.exit_code == 0, result.stderr + local.stderr
    assert_same_records(records, expected)
    assert all(sorted(p["label"] for p in r["predictions"]) == report["classes"] for r in records)


def test_embed_on_the_ray_engine_gives_the_local_features(ray_cluster, folder, classic_file, tmp_path):
    import numpy as np

    common = ["embed", "-q", "-b", "4", "--weights", str(classic_file), str(folder)]
    ray_run = CliRunner().invoke(main, [*common, "--engine", "ray", "-o", str(tmp_path / "ray.npz")])
    local_run = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "local.npz")])
    assert ray_run.exit_code == local_run.exit_code == 1, ray_run.stderr  # the bad files
    ours, reference = np.load(tmp_path / "ray.npz"), np.load(tmp_path / "local.npz")
    assert list(ours["paths"]) == list(reference["paths"]) and len(ours["paths"]) == len(list(folder.glob("*"))) - 4
    np.testing.assert_allclose(ours["features"], reference["features"], rtol=1e-5, atol=1e-5)


def test_ray_only_flags_need_the_ray_engine_on_every_command(tinted, tmp_path):
    for args in (
        ["embed", str(tinted), "-o", str(tmp_path / "f.npz")],
        ["evaluate", str(tinted)],
        ["train", str(tinted / "train"), "-o", str(tmp_path / "h.npz")],
        ["serve", "--port", "0"],
    ):
        result = CliRunner().invoke(main, [*args, "--ray-actors", "2"])
        assert result.exit_code == 2 and "--ray-actors is for --engine ray" in result.stderr, args
    result = CliRunner().invoke(
        main, ["train", str(tinted / "train"), "-o", str(tmp_path / "h.npz"), "--engine", "ray", "--augment", "1"]
    )
    assert result.exit_code == 2 and "--augment runs on the local engine" in result.stderr


def test_ray_int8_on_an_empty_cache_keeps_stdout_for_records(ray_cluster, folder, classic_file, tmp_path):
    """Bar 12-io-ray-cold-actors: two actors build the int8 model at once on an empty cache (a
    real process, so Ray's own output has a real stdout to land on): exit as the local engine,
    stdout only JSON lines, the local engine's records."""
    import subprocess

    photos = [
        str(p) for p in sorted(folder.glob("*.jpg")) if p.name not in ("empty.jpg", "notes.jpg", "truncated.jpg")
    ][:12]
    env = dict(os.environ, RESNET_CLI_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "resnet_cli",
            "--engine",
            "ray",
            "--ray-actors",
            "2",
            "--precision",
            "int8",
            "-b",
            "4",
            "--weights",
            str(classic_file),
            "-f",
            "jsonl",
            *photos,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]  # every line is a record
    _, expected = classify("--precision", "int8", "--weights", classic_file, *photos)
    assert_same_records(records, expected)


def test_the_driver_settings_reach_the_actors(ray_cluster, folder, classic_file, local_records, tmp_path, monkeypatch):
    """RESNET_CLI_CACHE set for this command only (after Ray started, so no worker inherited
    it): the actors build the model in that cache, and give the local engine's records."""
    cache = tmp_path / "cache-for-this-command"
    monkeypatch.setenv("RESNET_CLI_CACHE", str(cache))
    result, records = classify("--engine", "ray", "--weights", classic_file, folder)
    assert result.exit_code == 1, result.stderr
    assert_same_records(records, local_records)
    assert list((cache / "onnx").glob("*.onnx")), "the actors built the model somewhere else"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"weights": "/nowhere/resnet50.h5"},
            r"^node \S+ \([\d.]+\) cannot read the weights file /nowhere/resnet50\.h5: --weights",
        ),
        ({"weights_md5": "0" * 32}, r"^node \S+ \([\d.]+\): \S+ has md5 [0-9a-f]{32}, the driver's has 0{32}$"),
    ],
)
def test_a_worker_that_cannot_see_the_weights_stops_the_run_naming_its_node(ray_cluster, classic_file, change, message):
    """Checked in each actor before its first batch: one line naming the node, never a download."""

    from resnet_cli.engines import ray_pool
    from resnet_cli.errors import UserError
    from resnet_cli.inputs.discover import discover

    config, inputs = _ray_run(classic_file, SAMPLES)
    with pytest.raises(UserError, match=message):
        list(ray_pool.records(make_plan(dataclasses.replace(config, **change), inputs, RAY), discover(inputs.inputs)))


def test_a_worker_with_other_versions_or_settings_is_named(ray_cluster, classic_file, monkeypatch):
    from resnet_cli.engines import ray_worker

    config, _ = _ray_run(classic_file, SAMPLES)
    ray_worker.check_worker(config, ray_worker.worker_settings(), ray_worker.versions())  # this process: all the same
    with pytest.raises(
        ray_worker.WorkerSetupError,
        match=r"^node .* runs Ray \S+, the driver 0\.0: install the same resnet-cli, Ray and Python on every node",
    ):
        ray_worker.check_worker(config, {}, {**ray_worker.versions(), "Ray": "0.0"})
    monkeypatch.setenv("RESNET_CLI_CACHE", "/somewhere")
    assert ray_worker.worker_settings()["RESNET_CLI_CACHE"] == "/somewhere"
    with pytest.raises(ray_worker.WorkerSetupError, match="the driver's RESNET_CLI_CACHE did not reach the worker"):
        ray_worker.check_worker(config, {"RESNET_CLI_CACHE": "/elsewhere"}, {})


def test_a_stalled_run_says_what_the_cluster_has(capsys):
    import time

    from resnet_cli.engines.ray_cluster import Watchdog

    class Cluster:
        def available_resources(self):
            return {"CPU": 0.0}

        def cluster_resources(self):
            return {"CPU": 2.0, "GPU": 1.0}

    with Watchdog(Cluster(), seconds=0.2) as watchdog:
        time.sleep(0.7)  # one stall: one line, however long it lasts
        watchdog.beat()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert re.search(
        r"still waiting for the first results \(starting actors, loading the model\) after \d+ s;", lines[0]
    )
    assert lines[0].endswith(
        "the cluster has 0 of 2 CPUs free, 0 of 1 GPUs free; `ray status` shows what waits for resources"
    )


def test_the_driver_reads_a_bounded_window_ahead(ray_cluster, classic_file, tmp_path, monkeypatch):
    """Flat driver memory: however long the input, the driver has read at most two windows of
    blocks ahead of the records it has given back (a window in flight, one read ahead), and
    every input comes back once, in order, discovery's own errors kept."""
    from resnet_cli.engines import ray_plan, ray_pool
    from resnet_cli.inputs.discover import Source

    monkeypatch.setattr(ray_plan, "ROWS_PER_TASK", 4)
    config, inputs = _ray_run(classic_file, tmp_path)
    asked = EngineOptions(engine="ray", batch_size=4, ray_actors=1)
    window = ray_plan.Plan.for_cluster([2], 4, actors=1).window
    read, ahead = [], []

    def sources():
        for i in range(300):  # missing files: one error record each, no model work
            read.append(i)
            known = "cannot read the folder (test)" if i % 100 == 7 else None  # discovery's own verdict
            yield Source(str(tmp_path / f"missing{i:03d}.jpg"), explicit=True, error=known)

    records = []
    for record in ray_pool.records(make_plan(config, inputs, asked), sources()):
        records.append(record)
        ahead.append(len(read) - len(records))
    assert [r.path for r in records] == [str(tmp_path / f"missing{i:03d}.jpg") for i in range(300)]
    assert [r.error for r in records if "folder" in r.error] == ["cannot read the folder (test)"] * 3
    assert all(r.error == "no such file" for r in records if "folder" not in r.error)
    assert max(ahead) <= 2 * window * ray_plan.ROWS_PER_TASK, max(ahead)
    assert max(ahead) >= window * ray_plan.ROWS_PER_TASK - 4  # it does read ahead: decoding overlaps scoring


def test_an_actor_the_cluster_cannot_place_holds_no_work(ray_cluster, folder, classic_file, local_records, monkeypatch):
    """Blocks go only to actors that have started: one waiting for a node that never comes (an
    autoscaler still adding it, say) leaves the run to the others, which give every record."""
    import threading

    from resnet_cli.engines import ray_pool
    from resnet_cli.inputs.discover import discover

    start_actors = ray_pool._start_actors

    def with_one_unplaceable(ray, config, plan, top_k, predictor):
        waiting = (
            ray.remote(predictor)
            .options(num_cpus=0, resources={"a-node-that-never-comes": 1})
            .remote(config=config, batch_size=4, top_k=top_k)
        )
        return [waiting, *start_actors(ray, config, plan, top_k, predictor)]

    monkeypatch.setattr(ray_pool, "_start_actors", with_one_unplaceable)
    config, inputs = _ray_run(classic_file, folder)
    records = []
    run = threading.Thread(
        target=lambda: records.extend(
            r.as_dict() for r in ray_pool.records(make_plan(config, inputs, RAY), discover(inputs.inputs))
        ),
        daemon=True,
    )
    run.start()
    run.join(timeout=180)
    assert not run.is_alive(), "the run waited for the actor that cannot be placed"
    assert_same_records(records, local_records)


def test_an_html_report_on_the_ray_engine_has_every_thumbnail(ray_cluster, folder, classic_file, tmp_path):
    report = tmp_path / "ray.html"
    result = CliRunner().invoke(
        main, ["--engine", "ray", "--weights", str(classic_file), "-q", "-o", str(report), str(folder)]
    )
    local = CliRunner().invoke(main, ["--weights", str(classic_file), "-q", "-f", "jsonl", str(folder)])
    good = [line for line in local.stdout.splitlines() if '"predictions"' in line]
    text = report.read_text()
    assert result.exit_code == local.exit_code, result.stderr
    assert text.count("<figure") == len(good) == text.count('src="data:image/jpeg;base64,')


def test_resnet152_on_the_ray_engine_gives_the_local_records(ray_cluster, family, folder):
    """--model reaches the actors: ResNet152's records on Ray equal the local engine's, and
    both give keras.applications.ResNet152's own top five."""
    from resnet_cli.inputs.decode import decode

    member = family("resnet152")
    local, local_records = classify("--model", "resnet152", "--weights", member.file, folder)
    remote, ray_records = classify("--model", "resnet152", "--engine", "ray", "--weights", member.file, folder)
    assert (local.exit_code, remote.exit_code) == (1, 1), remote.stderr  # the bad files
    assert_same_records(ray_records, local_records)
    good = [r for r in ray_records if "predictions" in r]
    expected = member.probabilities(np.stack([decode(r["path"]) for r in good]))
    assert [[p["index"] for p in r["predictions"]] for r in good] == np.argsort(-expected, 1)[:, :5].tolist()


def test_openvino_on_the_ray_engine_gives_the_local_records(ray_cluster, folder, classic_file):
    """--runtime openvino reaches the actors (each compiles, or loads the compiled blob)."""
    local, local_records = classify("--runtime", "openvino", "--weights", classic_file, folder)
    args = ["-f", "jsonl", "-b", "4", "--runtime", "openvino", "--engine", "ray", "--weights", str(classic_file)]
    remote = CliRunner().invoke(main, [*args, str(folder)])
    assert (local.exit_code, remote.exit_code) == (1, 1), remote.stderr
    assert_same_records([json.loads(line) for line in remote.stdout.splitlines()], local_records)
    assert "Ray (openvino fp32" in remote.stderr  # the summary: what the actors were opened with


def _datasets(folder, tmp_path):
    """The folder's photos as a tar shard (a .json beside each, and a broken member) and as a
    Parquet file of three row groups (an image-bytes column and a key column)."""
    import io
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    shard = tmp_path / "000000.tar"
    with tarfile.open(shard, "w") as archive:
        for photo in photos:
            archive.add(photo, photo.name)
            info = tarfile.TarInfo(f"{photo.stem}.json")
            info.size = 2
            archive.addfile(info, io.BytesIO(b"{}"))
    table = tmp_path / "photos.parquet"
    rows = {"key": [p.stem for p in photos], "image": [p.read_bytes() for p in photos]}
    pq.write_table(pa.table(rows), table, row_group_size=-(-len(photos) // 3))
    assert pq.ParquetFile(table).metadata.num_row_groups == 3
    return photos, shard, table


def test_tar_shards_and_parquet_are_read_by_the_workers_and_give_the_local_records(
    ray_cluster, folder, classic_file, tmp_path, monkeypatch
):
    """A shard, and each Parquet row group, is read by one task on a worker: the driver never
    opens one (its readers fail here), and the records equal the local engine's, in order, the
    .json members skipped, the broken photos one error record each."""
    from resnet_cli.inputs import datasets

    photos, shard, table = _datasets(folder, tmp_path)
    runs = ([shard], [table], [table, "--key-column", "key"])
    local = [classify("-v", "--weights", classic_file, *inputs) for inputs in runs]

    def not_on_the_driver(*args, **kwargs):
        raise AssertionError("the driver read a dataset")

    monkeypatch.setattr(datasets, "_tar_sources", not_on_the_driver)
    monkeypatch.setattr(datasets, "_parquet_sources", not_on_the_driver)
    for inputs, (local_result, expected) in zip(runs, local):
        ray_result, ours = classify("-v", "--engine", "ray", "--weights", classic_file, *inputs)
        assert ray_result.exit_code == local_result.exit_code == 1, ray_result.stderr  # the bad files among them
        assert len(ours) == len(photos)
        assert_same_records(ours, expected)
        skipped = ray_result.stderr.count(".json (not an image)")
        assert skipped == local_result.stderr.count(".json (not an image)") == (len(photos) if inputs == [shard] else 0)


@pytest.mark.parametrize("keyed", [False, True])
def test_resume_on_shards_gives_each_member_once(ray_cluster, folder, classic_file, tmp_path, keyed):
    """A run that ended in the middle of a shard (its first records kept), then --resume on the
    ray engine: every member exactly once, equal to the local records; the members already
    recorded are left out by the task that reads the shard (or, by key, by the driver)."""
    photos, shard, table = _datasets(folder, tmp_path)
    inputs = [str(table), "--key-column", "key"] if keyed else [str(shard), str(table)]
    _, expected = classify("--weights", classic_file, *inputs)
    out = tmp_path / "records.jsonl"
    cut = len(expected) // 2 + 1  # inside the tar shard (or the Parquet file's second row group)
    out.write_text("".join(json.dumps(r) + "\n" for r in expected[:cut]))
    result = CliRunner().invoke(
        main,
        [
            "-q",
            "-f",
            "jsonl",
            "-b",
            "4",
            "--engine",
            "ray",
            "--weights",
            str(classic_file),
            "-o",
            str(out),
            "--resume",
            *inputs,
        ],
    )
    assert result.exit_code == 1, result.stderr
    records = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(records) == len(out.read_text().splitlines()) == len(expected)  # none twice, none lost
    assert_same_records([records[r["path"]] for r in expected], expected)  # error records run again, at the end
