"""`make bench` (serve): the server's latency, throughput and memory, as ratios measured in
this run — to the model's bare batch-1 time, to a cached CLI run, to the CLI's own end-to-end
rate on the same photo, and to LitServe serving the same graph on the same runtime. The load
generator is Debian's `hey` (installed here where apt-get may; else those rows are skipped,
saying why). Photos: a 500×375 JPEG made from a sample image.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import CLI, ENV, WORK, photo_folder, run_cli, weights_file
from table import machine, print_table, record, say

REQUESTS = int(os.environ.get("BENCH_SERVE_REQUESTS", "10000"))  # the memory row: RSS after these ÷ after 1,000
CLIENTS = 16
ROUNDS = 3  # interleaved rounds per ratio
PEER_ROUNDS = 5  # ours and LitServe, who goes first alternating
BATCH, WAIT_MS = 32, 2.0


def hey_path() -> str | None:
    if shutil.which("hey") is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "hey"],
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return shutil.which("hey")


def hey(url: str, body: Path, content_type: str, requests: int = 0, clients: int = 1, seconds: float = 0) -> dict:
    """hey's requests/s and latency percentiles (s); every answer must be 200."""
    amount = ["-z", f"{seconds}s"] if seconds else ["-n", str(requests)]
    done = subprocess.run(
        ["hey", *amount, "-c", str(clients), "-m", "POST", "-T", content_type, "-D", str(body), url],
        capture_output=True,
        text=True,
    )
    text = done.stdout
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", text))
    if set(codes) != {"200"}:
        raise SystemExit(f"hey got answers other than 200: {codes}\n{text}")
    percentile = {p: float(v) for p, v in re.findall(r"(\d+)%+ in ([\d.]+) secs", text)}
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), **percentile}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server ended: {process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never answered 200")


def start_ours(weights: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        *CLI,
        "serve",
        "--weights",
        str(weights),
        "--port",
        str(port),
        "-b",
        str(BATCH),
        "--max-wait-ms",
        str(WAIT_MS),
    ]
    process = subprocess.Popen([*command, *args], stderr=subprocess.DEVNULL, env=ENV)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/readyz", process)
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def rss_mib(pid: int) -> float:
    """The process's resident memory and its children's (LitServe's workers), MiB."""
    total = 0
    for line in subprocess.run(
        ["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True
    ).stdout.split():
        total += int(line)
    return total / 1024


def bare_batch1(weights: Path, photo: Path, runtime: str = "auto"):
    """The model alone, one photo a call (the runtime the server runs): a function timing
    ``calls`` calls, median seconds. Opened once, beside the server, so the rounds interleave."""

    from resnet_cli.config import resolve
    from resnet_cli.inputs.decode import decode
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.factory import open_runtime

    config = resolve(ModelRequest(weights=str(weights), runtime=runtime))
    runtime_ = open_runtime(config, batch_size=1)
    one = decode(str(photo), config.decode)[None]
    for _ in range(10):
        runtime_.predict(one)

    def median_seconds(calls: int = 100) -> float:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            runtime_.predict(one)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return median_seconds


def multipart(photo: Path) -> tuple[Path, str]:
    boundary = "resnetclassifybench"
    body = WORK / "multipart.body"
    body.write_bytes(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{photo.name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + photo.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def main() -> None:
    say(f"serve bench on {machine()}")
    if hey_path() is None:
        say("serve bench skipped: the load generator hey is not installed (apt-get install hey, as root)")
        return
    weights = weights_file()
    folder = photo_folder("serve_photos", (500, 375), 1)
    photo = next(folder.iterdir())
    same_photo = WORK / "serve_same_photo"
    if not same_photo.exists():
        same_photo.mkdir()
        for i in range(600):
            os.link(photo, same_photo / f"copy{i:04d}.jpg")
    wflag = ["--weights", str(weights)]

    ours, url = start_ours(weights)  # also fills the model cache the CLI runs below use
    bare = bare_batch1(weights, photo)
    cli_one = statistics.median(run_cli([*wflag, "-q", "-f", "json", str(photo)])[0] for _ in range(3))
    # Each ratio is taken within a round, its two sides a few seconds apart (this machine's speed
    # drifts by a third between minutes); the median round is reported.
    latency, loaded, cli_rates = [], [], []
    try:
        classify = url + "/v1/classify"
        after_1000 = hey(classify, photo, "image/jpeg", requests=1000, clients=CLIENTS)
        rss_1000 = rss_mib(ours.pid)
        for _ in range(ROUNDS):
            single = hey(classify, photo, "image/jpeg", requests=100, clients=1)
            latency.append((single["50"], single["99"], bare()))
        per_round = max(0, REQUESTS - 1000 - 100 * ROUNDS) // ROUNDS
        for _ in range(ROUNDS):
            loaded.append(hey(classify, photo, "image/jpeg", requests=per_round, clients=CLIENTS)["rps"])
            cli_rates.append(600 / run_cli([*wflag, "-q", "-f", "jsonl", str(same_photo)])[0])
        rss_all = rss_mib(ours.pid)
    finally:
        stop(ours)

    p50, p99, bare_s = sorted(latency, key=lambda row: row[0] / row[2])[ROUNDS // 2]
    record(
        "HTTP latency p50, one client",
        f"{p50 * 1000:.1f} ms",
        f"÷ bare batch-1 model {bare_s * 1000:.1f} ms = {p50 / bare_s:.2f}× (goal ≤ 1.5; median of {ROUNDS} "
        f"rounds: {', '.join(f'{a / c:.2f}' for a, _, c in latency)})",
    )
    record("HTTP latency p99, one client", f"{p99 * 1000:.1f} ms", f"÷ bare batch-1 = {p99 / bare_s:.2f}×")
    record("HTTP p50 ÷ a cached CLI run of one photo", f"{p50 / cli_one:.3f}", f"CLI {cli_one:.2f} s")
    ratios = [mine / cli for mine, cli in zip(loaded, cli_rates)]
    middle = sorted(range(ROUNDS), key=ratios.__getitem__)[ROUNDS // 2]
    record(
        f"{CLIENTS} clients, one photo a request",
        f"{loaded[middle]:.1f} img/s",
        f"÷ CLI end to end on 600 copies {cli_rates[middle]:.1f} img/s = {ratios[middle]:.2f} (goal ≥ 0.9; median "
        f"of {ROUNDS} rounds: {', '.join(f'{r:.2f}' for r in ratios)})",
    )
    record(
        f"server RSS after {REQUESTS:,} requests ÷ after 1,000",
        f"{rss_all / rss_1000:.3f}",
        f"{rss_1000:.0f} → {rss_all:.0f} MiB (goal ≤ 1.1)",
    )
    record("16 clients, first 1,000 requests", f"{after_1000['rps']:.1f} img/s", "")

    peer_rows(weights, photo)
    print_table(
        f"`make bench` (serve), ResNet50, 500×375 JPEG, batch ≤ {BATCH}, wait {WAIT_MS} ms — {machine()}", "serve"
    )


def peer_rows(weights: Path, photo: Path) -> None:
    """Ours and LitServe on the same graph and runtime (ONNX Runtime), the same multipart load,
    one after the other in each of PEER_ROUNDS rounds (one server up at a time)."""
    try:
        import litserve  # noqa: F401
    except ImportError:
        say("LitServe peer skipped: litserve is not installed (pip install -e '.[bench]')")
        return
    body, content_type = multipart(photo)
    seconds = float(os.environ.get("BENCH_SECONDS", "6")) * 2
    sides = (ours_rate, litserve_rate)
    rounds = []
    for turn in range(PEER_ROUNDS):  # who goes first alternates: neither gains from the machine's drift
        rate = {side: side(weights, body, content_type, seconds) for side in sides[:: -1 if turn % 2 else 1]}
        rounds.append((rate[ours_rate], rate[litserve_rate]))
    ratios = [mine / theirs for mine, theirs in rounds]
    middle = sorted(range(PEER_ROUNDS), key=ratios.__getitem__)[PEER_ROUNDS // 2]
    record(
        f"{CLIENTS} clients, multipart, onnx runtime: ours ÷ LitServe",
        f"{ratios[middle]:.2f}",
        f"{rounds[middle][0]:.1f} ÷ {rounds[middle][1]:.1f} img/s (goal ≥ 1.0; median of {PEER_ROUNDS} rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)})",
    )


def ours_rate(weights: Path, body: Path, content_type: str, seconds: float) -> float:
    ours, url = start_ours(weights, "--runtime", "onnx")
    try:
        hey(url + "/v1/classify", body, content_type, requests=200, clients=CLIENTS)
        return hey(url + "/v1/classify", body, content_type, clients=CLIENTS, seconds=seconds)["rps"]
    finally:
        stop(ours)


def litserve_rate(weights: Path, body: Path, content_type: str, seconds: float) -> float:
    port = free_port()
    peer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "litserve_peer.py"),
            str(weights),
            str(port),
            str(BATCH),
            str(WAIT_MS / 1000),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", peer)
        hey(f"http://127.0.0.1:{port}/predict", body, content_type, requests=200, clients=CLIENTS)
        return hey(f"http://127.0.0.1:{port}/predict", body, content_type, clients=CLIENTS, seconds=seconds)["rps"]
    finally:
        os.killpg(peer.pid, 15)
        peer.wait(60)
        gone(peer.pid)


def gone(group: int, seconds: float = 60) -> None:
    """Wait until every process of the group has ended: LitServe's workers outlive its main
    process (by ~1.6 s here), and would take CPU from whatever the bench measures next."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):  # it may end between the last look and now
        os.killpg(group, 9)


if __name__ == "__main__":
    main()
