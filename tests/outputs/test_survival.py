"""What survives what, through the real CLI in subprocesses: kill -9 at a random point and then
--resume gives every input exactly once (jsonl, csv, parquet; a file, a shard folder, a file://
URI) with the killed run's records kept; two runs on one output; a rerun without --resume."""

import csv
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cli_command, make_folder

LEFTOVERS = (".journal", ".partial", ".lock", ".overwrite")


def _target(tmp_path: Path, fmt: str, kind: str) -> tuple[str, Path]:
    """(-o as given, the local folder it writes in)."""
    out = tmp_path / "out"
    out.mkdir()
    if kind == "shards":
        return f"{out}/shards/", out / "shards"
    if kind == "uri":
        return f"file://{out}/records.{fmt}", out
    return str(out / f"records.{fmt}"), out


def _lines_written(folder: Path) -> int:
    """Whole records on disk so far (-k 1: one CSV row each), whatever the format (Parquet's are
    in its journal)."""
    if not folder.is_dir():
        return 0
    total = 0
    for path in folder.iterdir():
        if path.is_file() and not path.name.endswith(".lock") and "settings.json" not in path.name:
            total += path.read_bytes().count(b"\n") - (path.suffix == ".csv")
    return total


def _paths(target: str, folder: Path, fmt: str) -> list[str]:
    files = sorted(folder.glob(f"part-*.{fmt}")) if target.endswith("/") else [folder / Path(target).name]
    found = []
    for file in files:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            found += pq.read_table(file).column("path").to_pylist()
        elif fmt == "csv":
            found += list(dict.fromkeys(row["path"] for row in csv.DictReader(file.open(newline=""))))
        else:
            found += [json.loads(line)["path"] for line in file.read_text().splitlines()]
    return found


# Every format with every kind of output in `make test`; the fast lane keeps a Latin square of
# them (each format once, each kind once).
FAST_PAIRS = {("jsonl", "file"), ("csv", "shards"), ("parquet", "uri")}


@pytest.mark.parametrize(
    "fmt,kind",
    [
        pytest.param(fmt, kind, marks=() if (fmt, kind) in FAST_PAIRS else pytest.mark.slow)
        for fmt in ("jsonl", "csv", "parquet")
        for kind in ("file", "shards", "uri")
    ],
)
def test_kill_9_then_resume_gives_every_input_once(classic_file, tmp_path, fmt, kind):
    photos = [str(p) for p in make_folder(tmp_path / "photos", 30, size=(40, 30))]
    target, folder = _target(tmp_path, fmt, kind)
    command = cli_command(classic_file, "-q", "-k", "1", "-f", fmt, "-o", target, str(tmp_path / "photos"))
    kill_after = random.Random(f"{fmt}-{kind}").randint(2, 20)
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and _lines_written(folder) < kill_after and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    kept = _lines_written(folder)
    assert kept >= kill_after, (kept, kill_after)

    resumed = subprocess.run(
        cli_command(classic_file, "-k", "1", "-f", fmt, "-o", target, "--resume", str(tmp_path / "photos")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    done = int(resumed.stderr.split(" already done")[0].rsplit(", ", 1)[-1])
    assert done >= min(kept, 30), resumed.stderr  # the killed run's records were kept, not redone
    recorded = _paths(target, folder, fmt)
    assert sorted(recorded) == sorted(photos) and len(recorded) == len(set(recorded))
    assert not [p.name for p in folder.rglob("*") if p.name.endswith(LEFTOVERS)]  # no temp file left


def test_two_runs_on_one_output_the_second_is_refused(classic_file, tmp_path):
    photos = make_folder(tmp_path / "photos", 40, size=(40, 30))
    out = tmp_path / "out.jsonl"
    first = subprocess.Popen(cli_command(classic_file, "-q", "-o", out, tmp_path / "photos"), stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.01)
    second = subprocess.run(
        cli_command(classic_file, "-q", "-o", out, "--resume", tmp_path / "photos"), capture_output=True, text=True
    )
    assert second.returncode == 1 and second.stdout == ""
    assert second.stderr == (
        f"resnet-classify: error: {out} is being written by another run (PID {first.pid}); "
        "one run writes an output at a time\n"
    )
    assert first.wait(timeout=300) == 0
    recorded = [json.loads(line)["path"] for line in out.read_text().splitlines()]  # every line whole
    assert sorted(recorded) == sorted(map(str, photos))
    assert not (tmp_path / ".out.jsonl.lock").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_rerun_never_replaces_records_without_being_asked(classic_file, tmp_path, fmt):
    make_folder(tmp_path / "photos", 6, size=(40, 30))
    out = tmp_path / f"out.{fmt}"
    first = subprocess.run(
        cli_command(classic_file, "-q", "-o", out, tmp_path / "photos"), capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    before = out.read_bytes()
    rerun = subprocess.run(
        cli_command(classic_file, "-q", "-o", out, tmp_path / "photos" / "img00000.png"), capture_output=True, text=True
    )
    assert rerun.returncode == 2 and "already holds records: add --resume" in rerun.stderr
    assert "--overwrite" in rerun.stderr and out.read_bytes() == before
    # --overwrite interrupted: the old records stay; completed: replaced.
    many = make_folder(tmp_path / "many", 40, size=(40, 30))
    interrupted = subprocess.Popen(
        cli_command(classic_file, "-q", "-o", out, "--overwrite", tmp_path / "many"), stderr=subprocess.PIPE, text=True
    )
    staging = [tmp_path / f".out.{fmt}.overwrite", tmp_path / f"..out.{fmt}.overwrite.journal"]
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.exists() and p.stat().st_size for p in staging):
        time.sleep(0.01)
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130 and f"{out} was left as it was" in stderr, stderr
    assert out.read_bytes() == before and not [p for p in staging if p.exists()]
    replaced = subprocess.run(
        cli_command(classic_file, "-q", "-o", out, "--overwrite", *many[:3]), capture_output=True, text=True
    )
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(_paths(str(out), tmp_path, fmt)) == sorted(map(str, many[:3]))
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(LEFTOVERS)]


def test_a_non_utf8_name_goes_into_parquet_and_csv_as_valid_utf8_and_resumes(classic_file, tmp_path):
    folder = tmp_path / "photos"
    make_folder(folder, 2, size=(40, 30))
    odd = os.path.join(os.fsencode(folder), b"bad\xff.png")
    os.link(os.path.join(os.fsencode(folder), b"img00000.png"), odd)
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"out.{fmt}"
        run = subprocess.run(cli_command(classic_file, "-q", "-o", out, folder), capture_output=True)
        assert run.returncode == 0, run.stderr
        out.read_bytes().decode("utf-8") if fmt == "csv" else None  # valid UTF-8
        paths = _paths(str(out), tmp_path, fmt)
        assert f"{folder}/bad\\udcff.png" in paths  # the byte, as JSON escapes it
        again = subprocess.run(cli_command(classic_file, "-o", out, "--resume", folder), capture_output=True, text=True)
        assert again.returncode == 0 and "3 already done" in again.stderr, again.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_full_disk_is_one_line_and_the_records_before_stay_whole(classic_file, tmp_path, fmt):
    """The file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes writes fail as a full disk does."""
    import resource

    photos = make_folder(tmp_path / "photos", 30, size=(40, 30))
    warm = subprocess.run(cli_command(classic_file, "-q", "-f", "jsonl", photos[0]), capture_output=True)
    assert warm.returncode == 0  # the model is cached: the run below writes only its records

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))

    out = tmp_path / f"out.{fmt}"
    full = subprocess.run(
        cli_command(classic_file, "-q", "-o", out, tmp_path / "photos"),
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
    )
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    (line,) = full.stderr.splitlines()
    assert line.startswith("resnet-classify: error: ") and "File too large" in line
    journal = out if fmt == "jsonl" else tmp_path / f".out.{fmt}.journal"
    kept = [json.loads(line)["path"] for line in journal.read_text().splitlines(keepends=True) if line.endswith("\n")]
    assert 3 <= len(kept) < 30
    resumed = subprocess.run(
        cli_command(classic_file, "-o", out, "--resume", tmp_path / "photos"), capture_output=True, text=True
    )
    assert resumed.returncode == 0 and f"{len(kept)} already done" in resumed.stderr, resumed.stderr
    assert sorted(_paths(str(out), tmp_path, fmt)) == sorted(map(str, photos))
