"""outputs.html: the report of a run, rendered by a real browser (headless Chromium): every input
has its tile with the records' labels, the errors are listed, a hostile file name stays text."""

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import SAMPLES

HOSTILE = "<img src=x onerror=document.title='pwned'>.png"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium here (make test installs Debian's chromium where apt-get can; else install it)")


def _browser(*args, tmp_path: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=120)


class Page(HTMLParser):
    """Tiles (path, labels), error lines and the title of a rendered page."""

    def __init__(self):
        super().__init__()
        self.tiles, self.errors, self.title, self.stack = [], [], "", []
        self.in_errors = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append((tag, attrs))
        if tag == "figure" and "tile" in (attrs.get("class") or ""):
            self.tiles.append({"path": "", "labels": [], "img": False})
        if tag == "img" and self.tiles and self._inside("figure"):
            self.tiles[-1]["img"] = attrs.get("src", "").startswith("data:image/jpeg;base64,")
        if tag == "section" and attrs.get("id") == "errors":
            self.in_errors = True
        if tag == "li" and self.in_errors:
            self.errors.append("")

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break
        if tag == "section":
            self.in_errors = False

    def _inside(self, tag, cls=None):
        return any(t == tag and (cls is None or cls in (a.get("class") or "")) for t, a in self.stack)

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "title":
            self.title += data
        if self.in_errors and self.errors:
            self.errors[-1] += data
        if self.tiles and self._inside("figure"):
            if self._inside("div", "path"):
                self.tiles[-1]["path"] += data
            elif self._inside("span", "label"):
                self.tiles[-1]["labels"].append(data)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-photos")
    for photo in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(photo, folder)
    shutil.copy(SAMPLES / "cat.jpg", folder / HOSTILE)
    shutil.copy(SAMPLES / "cat.jpg", folder / 'quote " and\nnewline.jpg')
    os.link(folder / "cat.jpg", os.path.join(os.fsencode(folder), b"odd\xff.jpg"))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def _run(classic_file, *args):
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "-q", *map(str, args)]
    return subprocess.run(command, capture_output=True)


@pytest.mark.slow
def test_the_report_renders_in_a_browser_with_every_tile_label_and_error(classic_file, photos, tmp_path):
    report = tmp_path / "report.html"
    run = _run(classic_file, "-o", report, photos)
    assert run.returncode == 1 and b"broken.jpg" in run.stderr  # the bad file: exit 1, as for every format
    records = [json.loads(line) for line in _run(classic_file, "-f", "jsonl", photos).stdout.splitlines()]
    dom = _browser("--dump-dom", report.as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr
    page = Page()
    page.feed(dom.stdout)
    assert page.title == "resnet-classify report"  # the hostile name's handler never ran
    assert "&lt;img src=x onerror=" in dom.stdout  # it is text in the page
    good = [r for r in records if "predictions" in r]
    shown = {tile["path"]: tile for tile in page.tiles}
    assert len(page.tiles) == len(good) and all(tile["img"] for tile in page.tiles)
    from resnet_cli.records import path_display

    for record in good:
        tile = shown[path_display(record["path"])]
        assert tile["labels"] == [p["label"] for p in record["predictions"]]
    assert len(page.errors) == 1 and page.errors[0].startswith(f"{photos}/broken.jpg: not an image")
    shot = tmp_path / "report.png"
    _browser(f"--screenshot={shot}", "--window-size=1280,1400", report.as_uri(), tmp_path=tmp_path)
    assert shot.stat().st_size > 10_000  # a page was painted
    if os.environ.get("RESNET_CLI_SCREENSHOT"):  # the README's picture: RESNET_CLI_SCREENSHOT=docs/report.png
        shutil.copy(shot, os.environ["RESNET_CLI_SCREENSHOT"])


def test_a_report_is_whole_after_ctrl_c_and_per_shard_in_a_folder(classic_file, photos, tmp_path):
    import signal
    import time

    from conftest import make_folder

    make_folder(tmp_path / "many", 60, size=(40, 30))
    report = tmp_path / "partial.html"
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "-q", "-b", "2"]
    run = subprocess.Popen([*command, "-o", str(report), str(tmp_path / "many")], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not report.exists() or report.read_text().count("<figure") < 4):
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=60)
    assert run.returncode == 130
    text = report.read_text()
    assert text.rstrip().endswith("</html>") and "id=summary" in text and 4 <= text.count("<figure") < 60
    shards = _run(classic_file, "-f", "html", "-o", f"{tmp_path}/shards/", photos)
    assert shards.returncode == 1
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["part-00000.html", "settings.json"]


@pytest.mark.slow
def test_evaluate_and_train_reports_render_with_their_numbers(classic_file, tinted, dev_images, tmp_path):
    from conftest import invoke

    report = tmp_path / "evaluate.html"
    photos = dev_images[0][:12]
    folder = tmp_path / "labeled"
    folder.mkdir()
    for path in photos:
        shutil.copy(path, folder)
    result = invoke("evaluate", "--weights", classic_file, "-q", "-f", "json", "--report", report, folder)
    numbers = json.loads(result.stdout)
    dom = _browser("--dump-dom", report.as_uri(), tmp_path=tmp_path).stdout
    page = Page()
    page.feed(dom)
    assert f"<dd>{numbers['top1']:.4f}</dd>" in dom and 'id="confusions"' in dom
    misses = round(numbers["images"] * (1 - numbers["top1"]))
    assert len(page.tiles) == misses and all(tile["img"] for tile in page.tiles)
    assert f"Misclassified ({misses})" in dom
    trained = tmp_path / "train.html"
    result = invoke("train", "--weights", classic_file, "-q", "-f", "json", tinted / "train", "-o", tmp_path / "h.npz",
                    "--report", trained)  # fmt: skip
    facts = json.loads(result.stdout)
    dom = _browser("--dump-dom", trained.as_uri(), tmp_path=tmp_path).stdout
    page = Page()
    page.feed(dom)
    assert f"<dd>{facts['val_images']}</dd>" in dom and f"<dd>{facts['val_accuracy']:.4f}</dd>" in dom
    wrong = facts["val_images"] - round(facts["val_accuracy"] * facts["val_images"])
    assert len(page.tiles) == wrong and all(tile["img"] for tile in page.tiles)
    for name in facts["classes"]:  # the class counts of both splits
        assert f"<td>{name}</td>" in dom


def test_a_report_of_urls_and_uris_has_their_thumbnails(classic_file, photos, tmp_path):
    """http(s) inputs from a local server and a file:// URI folder get tiles like files do."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SAMPLES))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cat.jpg"
        report = tmp_path / "web.html"
        run = _run(classic_file, "-o", report, url, f"file://{SAMPLES}/")
        assert run.returncode == 0, run.stderr
    finally:
        server.shutdown()
    text = report.read_text()
    assert url in text and f"file://{SAMPLES}/elephant.jpg" in text
    assert text.count('src="data:image/jpeg;base64,') == 1 + len(list(SAMPLES.glob("*.jpg")))
