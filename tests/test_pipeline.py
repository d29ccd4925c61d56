"""Messy folders through the real CLI: every bad or odd file gets its outcome, nothing crashes,
an interrupted run resumes to exactly-once output, and memory does not grow with the file count."""

import gc
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES
from PIL import Image

from resnet_cli.cli import main

ELEPHANT = SAMPLES / "elephant.jpg"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def decompression_bomb(path: Path) -> None:
    """A 40 000 × 40 000 PNG header with almost no data: 1.6 gigapixels declared."""
    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """name → path of every odd file the issue lists (and its upright/plain twin)."""
    d = tmp_path_factory.mktemp("corpus")
    photo = Image.open(ELEPHANT).convert("RGB")
    small = photo.resize((300, 200))
    files = {}

    def save(name, image, **kwargs):
        files[name] = d / name
        image.save(files[name], **kwargs)

    save("upright.png", small)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    save("rotated_exif.png", small.transpose(Image.Transpose.ROTATE_90), exif=exif)
    save("cmyk.jpg", small.convert("CMYK"), quality=95)
    save("grey.jpg", small.convert("L"))
    grey = np.asarray(small.convert("L"))
    save("grey8.png", Image.fromarray(grey))
    deep = Image.fromarray(grey.astype(np.uint16) * 257)
    assert deep.mode.startswith("I;16"), deep.mode
    save("deep16.png", deep)
    palette = small.quantize(64)
    palette.info["transparency"] = 0
    save("palette_transparent.png", palette, transparency=0)
    frame0, frame1 = small.quantize(256), photo.resize((300, 200)).rotate(180).quantize(256)
    save("animated.gif", frame0, save_all=True, append_images=[frame1], duration=100, loop=0)
    save("frame0.png", frame0.convert("RGB"))
    save("one_pixel.png", Image.new("RGB", (1, 1), (120, 80, 40)))
    files["empty.jpg"] = d / "empty.jpg"
    files["empty.jpg"].write_bytes(b"")
    files["truncated.jpg"] = d / "truncated.jpg"
    files["truncated.jpg"].write_bytes(ELEPHANT.read_bytes()[:20_000])
    files["text.jpg"] = d / "text.jpg"
    files["text.jpg"].write_text("this is not a JPEG\n")
    files["bomb.png"] = d / "bomb.png"
    decompression_bomb(files["bomb.png"])
    files["broken_link.jpg"] = d / "broken_link.jpg"
    files["broken_link.jpg"].symlink_to(d / "does-not-exist.jpg")
    files["loop_a.jpg"], files["loop_b.jpg"] = d / "loop_a.jpg", d / "loop_b.jpg"
    files["loop_a.jpg"].symlink_to(files["loop_b.jpg"])
    files["loop_b.jpg"].symlink_to(files["loop_a.jpg"])
    files["fifo.jpg"] = d / "fifo.jpg"
    os.mkfifo(files["fifo.jpg"])
    (d / "README.txt").write_text("a note, not an image")
    return d, files


def _records(result):
    return {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}


@pytest.fixture(scope="module")
def folder_run(corpus, classic_file):
    d, _ = corpus
    return CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", "-k", "5", str(d)])


EXPECTED_ERRORS = {
    "empty.jpg": "empty file",
    "truncated.jpg": "truncated",
    "text.jpg": "not an image",
    "bomb.png": "image too large",
    "broken_link.jpg": "broken symbolic link",
    "loop_a.jpg": "symbolic link loop",
    "loop_b.jpg": "symbolic link loop",
}
EXPECTED_OK = [
    "upright.png",
    "rotated_exif.png",
    "cmyk.jpg",
    "grey.jpg",
    "grey8.png",
    "deep16.png",
    "palette_transparent.png",
    "animated.gif",
    "frame0.png",
    "one_pixel.png",
]


def test_every_file_gets_its_outcome(folder_run):
    assert folder_run.exit_code == 1, folder_run.stderr
    assert "Traceback" not in folder_run.stderr
    records = _records(folder_run)
    for name, reason in EXPECTED_ERRORS.items():
        assert reason in records[name]["error"], (name, records[name])
        assert "error: " in folder_run.stderr and name in folder_run.stderr
    for name in EXPECTED_OK:
        assert len(records[name]["predictions"]) == 5, (name, records[name])
    assert "README.txt" not in records and "fifo.jpg" not in records  # skipped quietly
    assert f"{len(EXPECTED_OK)} classified, {len(EXPECTED_ERRORS)} failed, 2 skipped" in folder_run.stderr
    lines = [line for line in folder_run.stderr.splitlines() if line.startswith("resnet-classify: error:")]
    assert len(lines) == len(EXPECTED_ERRORS)


def test_twins_classify_identically(folder_run):
    records = _records(folder_run)
    for a, b in [("rotated_exif.png", "upright.png"), ("deep16.png", "grey8.png"), ("animated.gif", "frame0.png")]:
        assert records[a]["predictions"] == records[b]["predictions"], (a, b)


def test_named_non_image_is_an_error_not_a_skip(corpus, classic_file):
    d, files = corpus
    result = CliRunner().invoke(
        main,
        [
            "--weights",
            str(classic_file),
            "-f",
            "jsonl",
            str(d / "README.txt"),
            str(files["fifo.jpg"]),
            str(d / "missing.jpg"),
        ],
    )
    records = _records(result)
    assert records["README.txt"]["error"].startswith("not an image")
    assert records["fifo.jpg"]["error"] == "not a regular file"
    assert records["missing.jpg"]["error"] == "no such file"
    assert result.exit_code == 1


def test_permission_denied_is_reported(monkeypatch, tmp_path):
    import builtins

    from resnet_cli.inputs import decode

    target = tmp_path / "locked.jpg"
    target.write_bytes(ELEPHANT.read_bytes())
    real_open = builtins.open

    def guarded(path, *args, **kwargs):
        if str(path) == str(target):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(decode.ImageError, match="permission denied"):
        decode.decode(str(target))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_through_cli(classic_file, tmp_path):
    target = tmp_path / "locked.jpg"
    target.write_bytes(ELEPHANT.read_bytes())
    target.chmod(0)
    result = CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", str(target)])
    assert _records(result)["locked.jpg"]["error"] == "permission denied"


# ---------------------------------------------------------------------------- interrupt + resume


def _make_folder(folder: Path, count: int, size=(64, 48)) -> list[Path]:
    folder.mkdir()
    base = Image.open(ELEPHANT).convert("RGB").resize(size)
    paths = []
    for i in range(count):
        path = folder / f"img{i:05d}.png"
        base.rotate(i % 360).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("engine, count", [("local", 48), ("ray", 150)])
def test_sigint_then_resume_gives_every_file_exactly_once(classic_file, tmp_path, engine, count):
    if engine == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    paths = _make_folder(tmp_path / "photos", count)
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable,
        "-m",
        "resnet_cli",
        "--engine",
        engine,
        "--weights",
        str(classic_file),
        "--runtime",
        "onnx",
        "-b",
        "2",
        "-f",
        "jsonl",
        "-o",
        str(out),
        str(tmp_path / "photos"),
    ]
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


def test_resume_cuts_a_torn_last_line(tmp_path):
    from resnet_cli.outputs.resume import recorded_paths

    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "a.jpg", "predictions": []}\n{"path": "b.j')
    done = recorded_paths(str(out), "jsonl")
    assert len(done) == 1 and "a.jpg" in done and "b.j" not in done
    assert out.read_text() == '{"path": "a.jpg", "predictions": []}\n'


# ---------------------------------------------------------------------------- bounded memory


def _peak_bytes(folder: Path) -> tuple[int, int]:
    import tracemalloc

    from resnet_cli.engines.local import prediction_records, run
    from resnet_cli.inputs.decode import DecodeOptions
    from resnet_cli.inputs.discover import discover

    def predict(batch):  # a stand-in model: the pipeline's memory is what is measured
        scores = np.zeros((len(batch), 1000), np.float32)
        scores[:, 0] = batch.mean(axis=(1, 2, 3))
        return scores

    gc.collect()  # garbage of earlier tests is not this run's memory
    tracemalloc.start()
    count = 0
    for record in run(discover([str(folder)]), predict, prediction_records(5), DecodeOptions(), 16, 2):
        count += record.ok
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak


def test_memory_does_not_grow_with_the_number_of_files(tmp_path):
    small = _make_folder(tmp_path / "small", 200, size=(32, 32))
    big_folder = tmp_path / "big"
    big_folder.mkdir()
    for i in range(2000):
        os.link(small[i % 200], big_folder / f"img{i:05d}.png")
    # The least of two runs each: tracemalloc also counts what other threads of the test
    # process allocate meanwhile (seen once in the full suite: +5.6 MB in one run).
    (count_small, peak_small), (count_big, peak_big) = (
        min(_peak_bytes(folder) for _ in range(2)) for folder in (tmp_path / "small", big_folder)
    )
    assert (count_small, count_big) == (200, 2000)
    assert peak_big < peak_small * 1.5 + 2_000_000, (peak_small, peak_big)


# ---------------------------------------------------------------------------- signals


def _classify_process(classic_file, *args, **popen):
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "--runtime", "onnx", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _wait_for_lines(path: Path, count: int, limit: float = 240) -> None:
    deadline = time.time() + limit
    while time.time() < deadline and (not path.exists() or path.read_text().count("\n") < count):
        time.sleep(0.05)


def test_sigterm_is_like_ctrl_c_exit_143(classic_file, tmp_path):
    paths = _make_folder(tmp_path / "photos", 48)
    out = tmp_path / "out.jsonl"
    run = _classify_process(classic_file, "-b", 2, "-o", out, tmp_path / "photos")
    _wait_for_lines(out, 6)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143, stderr
    assert "terminated: " in stderr and " classified" in stderr and "Traceback" not in stderr
    lines = out.read_text().splitlines()
    assert 6 <= len(lines) < len(paths) and all(json.loads(line)["path"] for line in lines)


def test_json_stays_valid_after_ctrl_c(classic_file, tmp_path):
    _make_folder(tmp_path / "photos", 48)
    out = tmp_path / "out.json"
    run = _classify_process(classic_file, "-b", 2, "-o", out, tmp_path / "photos")
    _wait_for_lines(out, 6)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=120)
    assert run.returncode == 130
    records = json.loads(out.read_text())
    assert 4 <= len(records) < 48


def test_ctrl_c_while_stdin_is_empty_is_an_interrupt_with_a_whole_document(classic_file):
    """`-` waits for paths; Ctrl-C then is "interrupted" (exit 130), and -f json still prints
    a whole (empty) JSON array."""
    run = _classify_process(classic_file, "-f", "json", "-", stdin=subprocess.PIPE)
    time.sleep(4)  # imports done, blocked on stdin
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert json.loads(stdout) == []
    assert "interrupted: 0 classified" in stderr and "no images found" not in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------------- odd sources


def test_unreadable_folder_is_an_error_record(classic_file, tmp_path, monkeypatch):
    from resnet_cli.inputs import discover

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.jpg").write_bytes(ELEPHANT.read_bytes())
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    result = CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", str(locked), str(ELEPHANT)])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0] == {"path": str(locked), "error": "cannot read the folder (permission denied)"}
    assert "predictions" in records[1] and result.exit_code == 1


def test_a_bug_of_ours_is_an_internal_error_record_and_one_traceback(classic_file, tmp_path, monkeypatch):
    from resnet_cli.engines import local as pipeline

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(ELEPHANT.read_bytes())
    real_decode = pipeline.decode

    def buggy(path, options, explicit=True):
        if not path.endswith("b.jpg"):
            return real_decode(path, options, explicit)
        raise TypeError("a bug")

    monkeypatch.setattr(pipeline, "decode", buggy)
    monkeypatch.setattr(pipeline, "_internal_error_reported", pipeline.threading.Event())
    result = CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", str(tmp_path)])
    records = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert records["b.jpg"]["error"].startswith("internal error (TypeError: a bug)")
    assert "predictions" in records["a.jpg"] and "predictions" in records["c.jpg"]
    assert result.stderr.count("Traceback") == 1 and result.exit_code == 1


def test_progress_total_leaves_out_what_resume_skips(tmp_path):
    import threading as _threading

    from resnet_cli.commands.stream import count_in_background as _count_in_background
    from resnet_cli.outputs.pathset import PathSet
    from resnet_cli.request import InputOptions

    paths = _make_folder(tmp_path / "photos", 5, size=(8, 8))

    class Progress:
        total = None

        def update(self, task, total):
            self.total = total

    progress = Progress()
    _count_in_background(
        InputOptions(inputs=(str(tmp_path / "photos"),)), progress, 0, skip=PathSet([str(paths[0]), str(paths[1])])
    )
    for thread in _threading.enumerate():
        if thread.name == "count":
            thread.join()
    assert progress.total == 3
