"""Messy folders through the real CLI: every bad or odd file (and folder) gets its outcome, nothing crashes."""

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES, invoke
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


def test_every_format_pillow_opens_is_classified_and_skips_are_named(classic_file, tmp_path):
    """AVIF, ICO, QOI and PPM in a folder and named; a text file is skipped, -v names it."""
    photo = Image.open(ELEPHANT).convert("RGB")
    for name in ("e.avif", "e.ico", "e.qoi", "e.ppm"):
        (photo.resize((64, 64)) if name.endswith(".ico") else photo).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    result = CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", "-v", str(tmp_path)])
    records = _records(result)
    assert sorted(records) == ["e.avif", "e.ico", "e.ppm", "e.qoi"] and all(
        "predictions" in r for r in records.values()
    )
    assert f"resnet-classify: skipped: {tmp_path / 'notes.txt'} (not an image)" in result.stderr.splitlines()
    named = CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", str(tmp_path / "e.avif")])
    assert named.exit_code == 0 and "predictions" in _records(named)["e.avif"]


def test_a_folders_links_to_nothing_are_skipped_as_its_other_non_images_are(classic_file, tmp_path):
    """A link to itself or to nothing, not named like a photo, is one of a folder's other files:
    skipped and counted (named with -v), not an error that fails the run."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes())
    (folder / "self").symlink_to(folder / "self")
    (folder / "gone").symlink_to(folder / "nowhere")
    (folder / "notes.txt").write_text("not a photo")
    result = invoke("--weights", classic_file, "-f", "jsonl", "-v", folder)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1, result.stderr
    assert "3 skipped" in result.stderr and f"skipped: {folder / 'self'}" in result.stderr
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")  # named like a photo: its error record
    named = invoke("--weights", classic_file, "-f", "jsonl", folder)
    assert named.exit_code == 1 and '"error": "symbolic link loop"' in named.stdout
