"""inputs.fetch: URIs (pyarrow.fs) and http(s) URLs from a local server, each failure one error record."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, invoke

from resnet_cli.inputs.decode import decode
from resnet_cli.inputs.discover import discover


def test_uris_decode_like_paths_and_fail_in_plain_words(tmp_path):
    """file:// (as s3:// or gs://) through pyarrow.fs: same pixels as the path; bad URIs are
    ImageErrors, never exceptions of pyarrow's own."""
    pytest.importorskip("pyarrow", reason="pyarrow comes with the ray extra")
    from resnet_cli.inputs.decode import ImageError

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


@pytest.fixture
def web(tmp_path):
    """An HTTP server on 127.0.0.1 serving the sample photos, a text file named .jpg, a 404, a
    redirect, a photo sent a byte a second, a redirect to file://; and a second port that
    accepts connections and never answers."""
    import contextlib
    import functools
    import http.server
    import shutil
    import socket
    import threading
    import time

    root = tmp_path / "site"
    root.mkdir()
    for photo in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(photo, root / photo.name)
    (root / "notes.jpg").write_text("not a photo")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/drip.jpg":  # a byte a second: no read ever times out
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for byte in (SAMPLES / "cat.jpg").read_bytes()[:120]:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(1)
                return
            if self.path == "/to-file.jpg":
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()
                return
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


def test_the_timeout_bounds_a_whole_download_however_slowly_it_comes(classic_file, web):
    """A server that sends a byte a second never lets a read time out: --timeout 3 still ends
    that download at 3 s with its error record, and the run goes on."""
    import time

    site, _ = web
    started = time.monotonic()
    result = invoke("--weights", classic_file, "--timeout", 3, "-f", "jsonl", f"{site}/drip.jpg", f"{site}/cat.jpg")
    took = time.monotonic() - started
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and took < 20, took
    assert records[0]["error"] == "download took longer than 3 s (--timeout)" and records[1]["predictions"]


def test_a_redirect_to_a_file_is_refused_in_plain_words(classic_file, web):
    site, _ = web
    result = invoke("--weights", classic_file, "-f", "jsonl", f"{site}/to-file.jpg")
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and record["error"] == "redirected to file:///etc/passwd: only http(s) is followed"
