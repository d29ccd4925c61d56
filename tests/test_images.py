"""Decoding real photos: identical to keras.utils.load_img (stretch, nearest) + preprocess_input."""

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, preprocess_caffe

from resnet_cli.inputs.decode import DecodeOptions, decode, sniff
from resnet_cli.inputs.discover import discover


def test_decode_equals_keras_load_img_on_real_photos(keras, dev_images):
    from keras.applications.imagenet_utils import preprocess_input
    from keras.utils import img_to_array, load_img

    paths, _ = dev_images
    assert len(paths) >= 28  # 100 with ../shared, 28 made from the samples without
    for path in paths:
        ours = decode(path)
        theirs = img_to_array(load_img(path, target_size=(224, 224)))
        np.testing.assert_array_equal(ours.astype("float32"), theirs, err_msg=path)
        np.testing.assert_array_equal(preprocess_caffe(ours), preprocess_input(theirs.copy()), err_msg=path)


def test_crop_mode_is_resize_then_center_crop(keras, dev_images):
    from PIL import Image

    path = dev_images[0][0]
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        scale = 256 / min(w, h)
        resized = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
        left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
        expected = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype="float32")
    ours = decode(path, DecodeOptions(resize="crop", interpolation="bilinear")).astype("float32")
    assert ours.shape == (224, 224, 3)
    # One resampling step (box-resize) vs two (resize, crop): within a couple of grey levels.
    assert np.abs(ours - expected).mean() < 3.0


def test_sniff_formats():
    assert sniff(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "PNG"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"hello world") is None


def test_discover_order_dedup_hidden_and_loops(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.jpg").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "b" / "loop").symlink_to(tmp_path)  # a folder loop
    flat = [s.path for s in discover([str(tmp_path)])]
    assert flat == [str(tmp_path / "a.jpg")]
    deep = [s.path for s in discover([str(tmp_path), str(tmp_path / "a.jpg")], recursive=True)]
    assert deep == [str(tmp_path / "b" / "2.jpg"), str(tmp_path / "a.jpg")]  # the named file once, where it was named
    twice = [
        s.path
        for s in discover(
            [
                str(tmp_path / "a.jpg"),
                str(tmp_path / "b"),
                str(tmp_path / "." / "a.jpg"),
                str(tmp_path / "b" / "loop" / "b"),
            ],
            recursive=True,
        )
    ]
    assert twice == [
        str(tmp_path / "a.jpg"),
        str(tmp_path / "b" / "2.jpg"),
    ]  # a file and a folder named twice (by other spellings)
    hidden = [s.path for s in discover([str(tmp_path)], include_hidden=True)]
    assert str(tmp_path / ".hidden.jpg") in hidden
    assert all(not s.explicit for s in discover([str(tmp_path)]))
    assert [s.explicit for s in discover([str(tmp_path / "a.jpg")])] == [True]


def test_discover_reads_paths_from_stdin(tmp_path):
    import io

    (tmp_path / "x.jpg").write_bytes(b"x")
    stream = io.StringIO(f"{tmp_path / 'x.jpg'}\n\n{tmp_path / 'x.jpg'}\n{tmp_path / 'missing.jpg'}\n")
    # Taken as given, as xargs takes them (a set of every path would grow with the input count).
    assert [s.path for s in discover(["-"], stdin=stream)] == [
        str(tmp_path / "x.jpg"),
        str(tmp_path / "x.jpg"),
        str(tmp_path / "missing.jpg"),
    ]


def test_uris_decode_like_paths_and_fail_in_plain_words(tmp_path):
    """file:// (as s3:// or gs://) through pyarrow.fs: same pixels as the path; bad URIs are
    ImageErrors, never exceptions of pyarrow's own."""
    pytest.importorskip("pyarrow", reason="pyarrow comes with the ray extra")
    from resnet_cli.inputs.decode import ImageError, decode
    from resnet_cli.inputs.discover import discover

    photo = SAMPLES / "cat.jpg"
    np.testing.assert_array_equal(decode(photo.as_uri()), decode(str(photo)))
    for uri, reason in [
        ("foo://bucket/x.jpg", "cannot read the file (Unrecognized filesystem type"),
        ((tmp_path / "missing.jpg").as_uri(), "no such file"),
        (tmp_path.as_uri(), "is a folder"),
    ]:
        with pytest.raises(ImageError, match=re.escape(reason)):
            decode(uri)
    (tmp_path / "a.jpg").write_bytes(photo.read_bytes())
    (tmp_path / ".hidden.jpg").write_bytes(photo.read_bytes())
    assert [s.path for s in discover([tmp_path.as_uri()])] == [(tmp_path / "a.jpg").as_uri()]
    for folder in ("sub", ".hidden-folder"):  # listed a folder at a time, in the local walk's order
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "b.jpg").write_bytes(photo.read_bytes())
    (tmp_path / "z.jpg").write_bytes(photo.read_bytes())
    walked = [s.path for s in discover([tmp_path.as_uri()], recursive=True)]
    assert (
        walked
        == [(tmp_path / n).as_uri() for n in ("a.jpg", "z.jpg", "sub/b.jpg")]
        == [Path(s.path).as_uri() for s in discover([str(tmp_path)], recursive=True)]
    )


def test_nul_separated_paths_and_any_bytes_from_stdin(classic_file, tmp_path):
    """find -print0 | resnet-classify -0 -: names with newlines and non-UTF-8 bytes are
    classified; a NUL in newline-separated input is an error record, not a crash."""
    import json
    import os
    import subprocess
    import sys

    from conftest import SAMPLES

    odd = sorted([os.fsencode(tmp_path) + b"/new\nline.jpg", os.fsencode(tmp_path) + b"/latin-\xe9.jpg"])
    for name in odd:
        with open(name, "wb") as handle:
            handle.write((SAMPLES / "cat.jpg").read_bytes())
    listed = subprocess.run(
        ["find", str(tmp_path), "-name", "*.jpg", "-print0"], capture_output=True, check=True
    ).stdout
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "-f", "jsonl", "-q", "-k", "1"]
    done = subprocess.run([*command, "-0", "-"], input=listed, capture_output=True)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(os.fsencode(r["path"]) for r in records) == odd and all(r["predictions"] for r in records)
    done = subprocess.run([*command, "-"], input=b"a\0b.jpg\n", capture_output=True)
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert "NUL byte" in record["error"] and "-0" in record["error"]


@pytest.fixture
def web(tmp_path):
    """An HTTP server on 127.0.0.1 serving the sample photos, a text file named .jpg, a 404, a
    redirect; and a second port that accepts connections and never answers."""
    import functools
    import http.server
    import shutil
    import socket
    import threading

    root = tmp_path / "site"
    root.mkdir()
    for photo in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(photo, root / photo.name)
    (root / "notes.jpg").write_text("not a photo")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/moved.jpg":
                self.send_response(302)
                self.send_header("Location", "/cat.jpg")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel completes the handshake), never answers
    yield f"http://127.0.0.1:{server.server_address[1]}", f"http://127.0.0.1:{silent.getsockname()[1]}"
    server.shutdown()
    silent.close()


def test_urls_give_the_files_records_and_one_error_each(classic_file, web):
    """Bar 12-io-urls, on this machine's sample photos: the same top-5 over http as from disk;
    a 404, a text file named .jpg and a server that never answers are one error record each."""
    import json
    import time

    from click.testing import CliRunner

    from resnet_cli.cli import main

    site, silent = web
    photos = sorted(p.name for p in SAMPLES.glob("*.jpg"))
    urls = [f"{site}/{name}" for name in photos] + [f"{site}/moved.jpg"]
    bad = [f"{site}/missing.jpg", f"{site}/notes.jpg", f"{silent}/photo.jpg"]
    common = ["--weights", str(classic_file), "-f", "jsonl", "-q"]
    start = time.monotonic()
    result = CliRunner().invoke(main, [*common, "--timeout", "3", *urls, *bad])
    assert time.monotonic() - start < 90
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    records = {r["path"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert list(records) == urls + bad  # path: the URL as typed, in input order
    on_disk = {
        r["path"]: r
        for r in map(
            json.loads, CliRunner().invoke(main, [*common, *(str(SAMPLES / n) for n in photos)]).stdout.splitlines()
        )
    }
    for name, url in zip(photos, urls):
        assert [p["index"] for p in records[url]["predictions"]] == [
            p["index"] for p in on_disk[str(SAMPLES / name)]["predictions"]
        ]
    assert [p["index"] for p in records[f"{site}/moved.jpg"]["predictions"]] == [
        p["index"] for p in records[f"{site}/cat.jpg"]["predictions"]
    ]
    assert records[bad[0]]["error"] == "HTTP 404 File not found"
    assert records[bad[1]]["error"] == "not an image (unrecognised file format)"
    assert records[bad[2]]["error"] == "no answer within 3 s (--timeout)"


def test_a_url_from_stdin_and_a_refused_connection(classic_file, web):
    import json

    from click.testing import CliRunner

    from resnet_cli.cli import main

    site, _ = web
    result = CliRunner().invoke(
        main,
        ["--weights", str(classic_file), "-f", "jsonl", "-q", "-"],
        input=f"{site}/cat.jpg\nhttp://127.0.0.1:1/x.jpg\n",
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and records[0]["predictions"]
    assert records[1]["error"] == "cannot connect (ConnectionError)"
