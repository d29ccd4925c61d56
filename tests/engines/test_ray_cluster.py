"""Bar 14-ray-cluster-settings: a real `ray start --head` cluster on this machine (2 CPUs, token
authentication on, as Ray 2.60's `ray start` sets it up; its token in a HOME of its own), driven
by the real CLI in fresh processes: settings given to the command reach the workers, a pool too
big for the cluster completes with a warning, a missing or wrong token is one line in seconds,
and no address starts a new local Ray rather than joining the running cluster."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import DEV, SAMPLES

pytestmark = pytest.mark.ray

pytest.importorskip("ray", reason="the ray extra is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(address, environment with the cluster's token) of a `ray start --head --block` cluster,
    stopped with its processes at the end (its own process group; never `ray stop`, which would
    stop every Ray on the machine)."""
    home = tmp_path_factory.mktemp("home")
    port = _free_port()
    ray = shutil.which("ray", path=os.path.dirname(sys.executable))
    env = dict(os.environ, HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)
    # A token in the cluster's HOME turns token authentication on, as on a machine where Ray
    # has made one (a local ray.init() does; `ray get-auth-token --generate` does).
    subprocess.run([ray, "get-auth-token", "--generate"], env=env, capture_output=True, check=True, timeout=60)
    head = subprocess.Popen(
        [
            ray,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    token = home / ".ray" / "auth_token"
    deadline = time.time() + 90
    while time.time() < deadline and not (token.exists() and _answers(port)):
        time.sleep(0.5)
    assert token.exists() and _answers(port), "ray start did not come up"
    yield f"127.0.0.1:{port}", env
    os.killpg(head.pid, 15)
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, 9)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def photos():
    return [str(p) for p in (sorted(DEV.glob("*.JPEG"))[:10] or sorted(SAMPLES.glob("*.jpg")))]


def _cli(env, *args, timeout=300):
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "resnet_cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )
    return done, time.monotonic() - start


def _top5(stdout: str) -> list:
    return [
        (r["path"], [p["index"] for p in r.get("predictions", [])], r.get("error"))
        for r in map(json.loads, stdout.splitlines())
    ]


def test_settings_given_to_the_command_reach_the_workers(cluster, classic_file, photos, tmp_path):
    address, env = cluster
    cache = tmp_path / "cache-of-this-command"
    run_env = dict(env, RAY_AUTH_MODE="token", RESNET_CLI_CACHE=str(cache))
    done, _ = _cli(
        run_env,
        "--engine",
        "ray",
        "--ray-address",
        address,
        "--precision",
        "int8",
        "--weights",
        classic_file,
        "-f",
        "jsonl",
        *photos,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resnet-classify: joined the Ray cluster at {address}: 1 node, 2 CPUs" in done.stderr
    assert list((cache / "onnx").glob("*.onnx")), "the workers built the model somewhere else"
    local, _ = _cli(
        dict(env, RESNET_CLI_CACHE=str(cache)),
        "-q",
        "--precision",
        "int8",
        "--weights",
        classic_file,
        "-f",
        "jsonl",
        *photos,
    )
    assert _top5(done.stdout) == _top5(local.stdout)


def test_more_actors_than_the_cluster_has_cpus_completes_with_a_warning(cluster, classic_file, photos, tmp_path):
    address, env = cluster
    run_env = dict(env, RAY_AUTH_MODE="token", RESNET_CLI_CACHE=str(tmp_path / "cache"))
    done, seconds = _cli(
        run_env,
        "--engine",
        "ray",
        "--ray-address",
        address,
        "--ray-actors",
        "5",
        "--weights",
        classic_file,
        "-f",
        "jsonl",
        *photos[:4],
    )
    assert done.returncode == 0 and seconds < 60, (seconds, done.stderr[-3000:])
    assert "warning: --ray-actors 5 on a cluster of 2 CPUs: 0.2 CPU each" in done.stderr
    assert len(done.stdout.splitlines()) == 4


@pytest.mark.parametrize(
    "auth, expected",
    [
        ({}, "uses token authentication and this machine sent no token: set RAY_AUTH_MODE=token"),
        (
            {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-cluster-token-0123456789"},
            "rejected this machine's token",
        ),
    ],
)
def test_a_missing_or_wrong_token_is_one_line_in_seconds(cluster, classic_file, auth, expected):
    address, env = cluster
    done, seconds = _cli(
        {**env, **auth}, "--engine", "ray", "--ray-address", address, "--weights", classic_file, SAMPLES / "cat.jpg"
    )
    assert done.returncode == 1 and done.stdout == "" and seconds < 15, (seconds, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"resnet-classify: error: the Ray cluster at {address} {expected}"
    ), lines


def test_no_address_starts_a_new_local_ray_beside_a_running_cluster(cluster, classic_file, tmp_path):
    _, env = cluster
    done, _ = _cli(
        dict(env, RESNET_CLI_CACHE=str(tmp_path / "cache")),
        "--engine",
        "ray",
        "--weights",
        classic_file,
        "-f",
        "jsonl",
        SAMPLES / "cat.jpg",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resnet-classify: started a local Ray: 1 node," in done.stderr and "joined" not in done.stderr


def test_a_ray_address_needs_the_ray_engine(classic_file):
    done, _ = _cli(
        dict(os.environ), "--ray-address", "x", "--engine", "local", "--weights", classic_file, SAMPLES / "cat.jpg"
    )
    assert done.returncode == 2 and "--ray-address" in done.stderr and done.stdout == ""
