"""resnet-classify serve as users run it: a real server process, real clients (curl): single
images, multipart, bad images, the size cap, the token, a full queue, readiness, metrics, named
inputs, a trickling client, and SIGTERM with requests in flight."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SAMPLES, invoke

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]
CAT, ELEPHANT = str(SAMPLES / "cat.jpg"), str(SAMPLES / "elephant.jpg")


class Server:
    """``resnet-classify serve`` on a free port; its stderr collected."""

    def __init__(self, *args, env=None):
        command = [sys.executable, "-m", "resnet_cli", "serve", "--port", "0", *map(str, args)]
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
        )
        self.lines, self.url = [], None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 120
        while self.url is None and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.url, self.stderr

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"on (http://\S+) ", line)
            if found:
                self.url = found.group(1)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, seconds=180):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if curl(self, "/readyz")[0] == 200:
                return self
            assert self.process.poll() is None, self.stderr
            time.sleep(0.2)
        raise AssertionError(f"not ready: {self.stderr}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def curl(server, path, *args, timeout=60):
    """(HTTP status, body) of ``curl`` against the server; status 0: no answer."""
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout), *args, server.url + path],
        capture_output=True,
        text=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status or 0), body


def image(path, *args):
    return ("--data-binary", f"@{path}", "-H", "Content-Type: image/jpeg", *args)


@pytest.fixture(scope="module")
def server(classic_file, tmp_path_factory):
    allowed = tmp_path_factory.mktemp("allowed")
    shutil.copy(CAT, allowed / "cat.jpg")
    os.symlink(ELEPHANT, allowed / "outside.jpg")
    running = Server("--weights", classic_file, "--max-body-mb", 1, "--read-timeout", 2, "--allow-dir", allowed)
    running.allowed = allowed
    yield running.wait_ready()
    running.stop()


def cli_json(classic_file, *args, input=None):
    result = invoke("--weights", classic_file, "-f", "json", *args, input=input)
    return json.loads(result.stdout)


def test_one_image_body_is_the_clis_record(server, classic_file):
    status, body = curl(server, "/v1/classify", *image(CAT))
    assert status == 200
    assert json.loads(body) == cli_json(classic_file, "-", input=open(CAT, "rb").read())
    status, body = curl(server, "/v1/classify?top_k=2", *image(CAT))
    assert [p["rank"] for p in json.loads(body)[0]["predictions"]] == [1, 2]
    assert curl(server, "/v1/classify?top_k=0", *image(CAT))[0] == 400


def test_multipart_files_each_get_a_record_in_order(server, classic_file, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    status, body = curl(server, "/v1/classify", "-F", f"a=@{ELEPHANT}", "-F", f"b=@{notes}", "-F", f"c=@{CAT}")
    assert status == 200
    records = json.loads(body)
    assert [r["path"] for r in records] == ["elephant.jpg", "notes.txt", "cat.jpg"]
    assert records[1] == {"path": "notes.txt", "error": "not an image (unrecognised file format)"}
    expected = cli_json(classic_file, ELEPHANT, CAT)
    assert [records[0]["predictions"], records[2]["predictions"]] == [r["predictions"] for r in expected]


def test_a_bad_single_image_is_422_with_its_error_record(server, tmp_path):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(open(CAT, "rb").read()[:3000])
    status, body = curl(server, "/v1/classify", *image(truncated))
    assert status == 422 and json.loads(body) == [{"path": "-", "error": "truncated image data"}]
    assert curl(server, "/v1/classify", *image("/dev/null"))[0] == 400  # no body at all


def test_a_body_over_the_cap_is_413_unread(server, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(200 * 2**20)  # 200 MiB, sparse
    started = time.monotonic()
    status, body = curl(server, "/v1/classify", *image(big))
    assert status == 413 and "larger than 1,048,576 bytes" in json.loads(body)["error"]
    assert time.monotonic() - started < 20
    # without a length: refused once past the cap (the chunk sent is all read: the answer is not lost to a reset)
    chunk = 2**20 + 10
    with _connect(server) as connection:
        connection.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{chunk:x}\r\n".encode()
            + b"\0" * chunk
            + b"\r\n"
        )
        connection.settimeout(20)
        assert connection.recv(4096).startswith(b"HTTP/1.1 413")
    assert curl(server, "/healthz")[0] == 200  # and it goes on serving


def _connect(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def test_a_client_that_trickles_its_body_gets_408(server):
    with _connect(server) as connection:
        connection.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n"
        )
        connection.settimeout(20)
        started = time.monotonic()
        answer = b""
        try:
            while time.monotonic() - started < 15 and b"\r\n\r\n" not in answer:
                connection.sendall(b"\xff")
                time.sleep(0.5)
                connection.setblocking(False)
                try:
                    answer += connection.recv(4096)
                except BlockingIOError:
                    pass
                connection.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert curl(server, "/v1/classify", *image(CAT))[0] == 200


def test_named_inputs_only_inside_an_allowed_folder_and_no_urls(server):
    def named(*inputs):
        return curl(
            server, "/v1/classify", "-H", "Content-Type: application/json", "-d", json.dumps({"inputs": inputs})
        )

    status, body = named(str(server.allowed / "cat.jpg"))
    assert status == 200 and json.loads(body)[0]["path"] == os.path.realpath(server.allowed / "cat.jpg")
    assert named(str(server.allowed / "outside.jpg"))[0] == 403  # a link out of the folder
    assert named(str(server.allowed / ".." / "x.jpg"))[0] == 403
    status, body = named("http://169.254.169.254/latest/meta-data")
    assert status == 403 and "--allow-urls" in json.loads(body)["error"]
    assert curl(server, "/v1/classify", "-H", "Content-Type: application/json", "-d", "[1]")[0] == 400


def test_models_and_metrics(server):
    status, body = curl(server, "/v1/models")
    model = json.loads(body)["models"][0]
    assert status == 200 and model["id"] == "resnet50" and model["classes"] == 1000
    assert model["settings"]["preprocessing"] == "caffe"
    curl(server, "/v1/classify", *image(CAT))
    status, text = curl(server, "/metrics")
    assert status == 200
    assert re.search(r'resnet_classify_requests_total\{endpoint="/v1/classify",status="200"\} [1-9]', text)
    assert re.search(r"resnet_classify_batch_size_count [1-9]", text)
    assert 'resnet_classify_errors_total{kind="too_large"}' in text or "too_large" not in text
    assert "resnet_classify_queue_depth 0.0" in text


def test_concurrent_clients_share_batches_and_a_full_queue_is_503(classic_file):
    server = Server("--weights", classic_file, "--max-queue", 6, "--max-wait-ms", 50).wait_ready()

    def batches():
        text = curl(server, "/metrics")[1]
        total = float(re.search(r"resnet_classify_batch_size_sum (\S+)", text).group(1))
        return total, float(re.search(r"resnet_classify_batch_size_count (\S+)", text).group(1))

    try:
        warm_up = batches()
        with ThreadPoolExecutor(6) as pool:
            singles = list(pool.map(lambda _: curl(server, "/v1/classify", *image(CAT)), range(6)))
        assert [status for status, _ in singles] == [200] * 6
        images, count = (now - before for now, before in zip(batches(), warm_up))
        assert images == 6 and count < 6  # one photo per request, fewer batches than requests
        two = ("-F", f"a=@{CAT}", "-F", f"b=@{CAT}")
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: curl(server, "/v1/classify", *two), range(12)))
        statuses = [status for status, _ in answers]
        assert set(statuses) == {200, 503}, statuses
        refused = next(body for status, body in answers if status == 503)
        assert "queue is full" in json.loads(refused)["error"]
    finally:
        server.stop()


def test_a_token_guards_everything_but_the_probes(classic_file):
    server = Server("--weights", classic_file, env={"RESNET_CLASSIFY_TOKEN": "s3cret"}).wait_ready()
    try:
        status, body = curl(server, "/v1/classify", *image(CAT))
        assert status == 401 and "token" in json.loads(body)["error"]
        assert curl(server, "/v1/classify", *image(CAT, "-H", "Authorization: Bearer wrong"))[0] == 401
        assert curl(server, "/v1/classify", *image(CAT, "-H", "Authorization: Bearer s3cret"))[0] == 200
        assert curl(server, "/metrics")[0] == 401
        assert curl(server, "/healthz")[0] == 200
    finally:
        server.stop()


def test_another_address_than_loopback_needs_a_token(classic_file):
    result = invoke("serve", "--weights", classic_file, "--host", "0.0.0.0")
    assert result.exit_code == 2 and "give a token" in result.stderr


def test_not_ready_before_the_warm_up_and_sigterm_answers_what_is_in_flight(classic_file, tmp_path):
    """A fresh cache: the model is exported first (seconds), so the first probes find it warming up."""
    server = Server("--weights", classic_file, env={"RESNET_CLI_CACHE": str(tmp_path / "cache")})
    status, body = curl(server, "/readyz")
    assert status == 503 and json.loads(body) == {"status": "warming up"}
    assert curl(server, "/v1/classify", *image(CAT))[0] == 503
    assert curl(server, "/healthz")[0] == 200
    server.wait_ready()
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(curl, server, "/v1/classify", *image(CAT)) for _ in range(16)]
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        answers = [future.result() for future in futures]
    assert server.process.wait(60) == 143
    # each request answered whole, or never let in (refused: curl's status 0); none cut off
    for status, body in answers:
        assert status in (200, 0), (status, body)
        if status == 200:
            assert json.loads(body)[0]["predictions"]
    assert any(status == 200 for status, _ in answers)
    assert "stopped (terminated)" in server.stderr
