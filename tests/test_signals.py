"""Ctrl-C and SIGTERM in a real subprocess: exit 130/143, every record whole, --resume gives each file once."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLES, cli_command, make_folder

ELEPHANT = SAMPLES / "elephant.jpg"


@pytest.mark.slow
@pytest.mark.parametrize("engine, count", [("local", 48), pytest.param("ray", 150, marks=pytest.mark.ray)])
def test_sigint_then_resume_gives_every_file_exactly_once(classic_file, tmp_path, engine, count):
    if engine == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    paths = make_folder(tmp_path / "photos", count)
    out = tmp_path / "out.jsonl"
    command = cli_command(classic_file, "--engine", engine, "-f", "jsonl", "-o", str(out), str(tmp_path / "photos"))
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 6):
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    partial = out.read_text()
    assert partial.endswith("\n")
    done_first = [json.loads(line)["path"] for line in partial.splitlines()]
    assert 6 <= len(done_first) < len(paths)

    second = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{len(done_first)} already done" in second.stderr
    recorded = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert sorted(recorded) == sorted(str(p) for p in paths)
    assert len(recorded) == len(set(recorded))


def _classify_process(classic_file, *args, **popen):
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "--runtime", "onnx", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _wait_for_lines(path: Path, count: int, limit: float = 240) -> None:
    deadline = time.time() + limit
    while time.time() < deadline and (not path.exists() or path.read_text().count("\n") < count):
        time.sleep(0.05)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_sigterm_is_like_ctrl_c_exit_143(classic_file, tmp_path, fmt):
    paths = make_folder(tmp_path / "photos", 48)
    out = tmp_path / f"out.{fmt}"
    run = _classify_process(classic_file, "-b", 2, "-o", out, tmp_path / "photos")
    _wait_for_lines(out if fmt == "jsonl" else tmp_path / f".out.{fmt}.journal", 6)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143, stderr
    assert "terminated: " in stderr and " classified" in stderr and "Traceback" not in stderr
    if fmt == "parquet":  # the journal was folded into a whole file as the run ended
        import pyarrow.parquet as pq

        recorded = pq.read_table(out).column("path").to_pylist()
        assert not (tmp_path / f".out.{fmt}.journal").exists()
    else:
        recorded = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert 6 <= len(recorded) < len(paths) and len(set(recorded)) == len(recorded)


def test_json_stays_valid_after_ctrl_c(classic_file, tmp_path):
    make_folder(tmp_path / "photos", 48)
    out = tmp_path / "out.json"
    run = _classify_process(classic_file, "-b", 2, "-o", out, tmp_path / "photos")
    _wait_for_lines(out, 6)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=120)
    assert run.returncode == 130
    records = json.loads(out.read_text())
    assert 4 <= len(records) < 48


READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}  # read(2) in /proc/PID/syscall


def _wait_until_reading_stdin(pid: int, limit: float = 120) -> None:
    """Until the process's main thread sits in read(0, …): imports done, waiting for paths."""
    import platform

    number = READ_SYSCALL.get(platform.machine())
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            fields = Path(f"/proc/{pid}/syscall").read_text().split()
        except OSError:
            fields = None
        if number is None or fields is None:  # no way to look: give the imports their time
            time.sleep(4)
            return
        if fields[:2] == [number, "0x0"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the process did not come to read its stdin within {limit} s")


def test_ctrl_c_while_stdin_is_empty_is_an_interrupt_with_a_whole_document(classic_file):
    """`-` waits for paths; Ctrl-C then is "interrupted" (exit 130), and -f json still prints
    a whole (empty) JSON array."""
    run = _classify_process(classic_file, "-f", "json", "-", stdin=subprocess.PIPE)
    _wait_until_reading_stdin(run.pid)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert json.loads(stdout) == []
    assert "interrupted: 0 classified" in stderr and "no images found" not in stderr and "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_first_signal_ends_a_run_waiting_on_a_download_within_two_seconds(
    classic_file, tmp_path, drip, sig, status
):
    """A run whose next record waits on a download that drips (--timeout 600 would let it):
    the first SIGTERM or Ctrl-C ends it within 2 s, the records made before it whole."""
    url, requested = drip
    out = tmp_path / "out.jsonl"
    run = _classify_process(classic_file, "-b", 1, "--timeout", 600, "-o", out, ELEPHANT, url, ELEPHANT)
    assert requested.wait(120), "the run never asked for the dripping photo"
    _wait_for_lines(out, 1)
    time.sleep(0.5)  # the run is waiting on the download now
    sent = time.monotonic()
    run.send_signal(sig)
    _, stderr = run.communicate(timeout=60)
    took = time.monotonic() - sent
    assert run.returncode == status and took < 2.0, (took, stderr)
    assert "Traceback" not in stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["path"] == str(ELEPHANT) and records[0]["predictions"]
    assert all(r["path"] in (str(ELEPHANT), url) for r in records)
