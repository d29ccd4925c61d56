"""Which Ray cluster a run joins, and saying so: connect (an address, $RAY_ADDRESS, or a new
local Ray), a wrong address or a missing/rejected token in one line within seconds, and a
watchdog that says what the cluster has free when a run stalls."""

from __future__ import annotations

import logging
import os
import socket
import time

from ..console import stderr_line
from ..errors import ClusterUnreachable, UserError

INSTALL_HINT = 'the ray engine needs Ray: pip install "resnet-cli[ray]"'


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def connect(address: str | None, quiet: bool = False):
    """Join the cluster at ``address`` (else ``$RAY_ADDRESS``), or start a new local Ray sized to
    this machine — never a cluster Ray happens to find running — and say which on stderr."""
    ray = import_ray()
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or "local"
        _check_reachable(target)
        _check_token(target)
        try:
            context = ray.init(
                address=target,
                include_dashboard=False if target == "local" else None,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except ConnectionError as error:
            raise ClusterUnreachable(f"cannot reach the Ray cluster at {target}: {error}") from None
        if not quiet:
            stderr_line(joined(ray, target, getattr(context, "dashboard_url", "")))
    return ray


def joined(ray, target: str, dashboard: str | None) -> str:
    """ "started a local Ray: 1 node, 2 CPUs" / "joined the Ray cluster at …: 3 nodes, 48 CPUs; dashboard …"."""
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    size = f"{nodes} node{'s' if nodes != 1 else ''}, {resources.get('CPU', 0):g} CPUs" + (
        f", {resources['GPU']:g} GPUs" if resources.get("GPU") else ""
    )
    where = "started a local Ray" if target == "local" else f"joined the Ray cluster at {target}"
    return f"{where}: {size}" + (f"; dashboard http://{dashboard}" if dashboard else "")


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A wrong address fails in seconds with one line, instead of Ray's minutes of retries."""
    if address in (None, "", "auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, colon, port = target.rpartition(":")
    if not colon:  # Ray's default ports: 6379 (GCS), 10001 (ray:// client)
        host, port = target, "10001" if address.startswith("ray://") else "6379"
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise ClusterUnreachable(
            f"cannot reach the Ray cluster at {address} ({error or type(error).__name__})"
        ) from None


def _check_token(address: str, timeout: float = 10.0) -> None:
    """Ray 2.60's ``ray start`` turns token authentication on; a missing or wrong token makes
    ray.init retry for 20 s and call the cluster unreachable. Ask the cluster once, with the
    token Ray would send, and say which it is in one line. (Ray's own pieces; if they move in
    another Ray release the check is skipped and ray.init decides.)"""
    if address in ("local", "auto") or "://" in address:
        return
    try:
        import grpc
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        metadata = _get_authentication_metadata_tuple()
    except Exception:  # noqa: BLE001 — Ray's private API moved or failed: let ray.init decide
        return
    with grpc.insecure_channel(address if ":" in address else f"{address}:6379") as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                return  # not ours to judge: ray.init says what it finds
            if not metadata:
                raise UserError(
                    f"the Ray cluster at {address} uses token authentication and this machine sent no token: "
                    "set RAY_AUTH_MODE=token and give it the cluster's token (~/.ray/auth_token, $RAY_AUTH_TOKEN "
                    "or $RAY_AUTH_TOKEN_PATH; `ray get-auth-token` prints it on the head node)"
                ) from None
            raise UserError(
                f"the Ray cluster at {address} rejected this machine's token: use that cluster's token (`ray "
                "get-auth-token` on its head node) in $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
            ) from None


STALL_SECONDS = 60.0  # no result for this long: say on stderr what the cluster has free


class Watchdog:
    """Says, once per stall, why a run makes no progress: what the cluster has free (actors and
    tasks waiting for resources Ray cannot find wait silently, for ever)."""

    def __init__(self, ray, seconds: float = STALL_SECONDS):
        import threading

        self.ray, self.seconds, self.last, self.any = ray, seconds, time.monotonic(), False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True, name="ray-watchdog")

    def beat(self) -> None:
        self.last, self.any = time.monotonic(), True

    def _watch(self) -> None:
        warned = None
        while not self.stop.wait(min(5.0, self.seconds / 4)):
            quiet_for, last = time.monotonic() - self.last, self.last
            if quiet_for >= self.seconds and warned != last:
                warned = last
                stderr_line(self.message(quiet_for))

    def message(self, quiet_for: float) -> str:
        try:
            free, total = self.ray.available_resources(), self.ray.cluster_resources()
        except Exception as error:  # the cluster went away: say that
            return (
                f"warning: no results for {quiet_for:.0f} s and the Ray cluster does not answer "
                f"({type(error).__name__})"
            )
        have = ", ".join(
            f"{free.get(key, 0):g} of {total[key]:g} {name} free"
            for key, name in (("CPU", "CPUs"), ("GPU", "GPUs"))
            if key in total
        )
        what = "results" if self.any else "the first results (starting actors, loading the model)"
        return (
            f"warning: still waiting for {what} after {quiet_for:.0f} s; the cluster has {have}; `ray status` shows "
            "what waits for resources"
        )

    def __enter__(self) -> Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
