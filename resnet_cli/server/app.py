"""The HTTP API (Starlette): ``POST /v1/classify`` (a raw image body, multipart files, or with
``--allow-urls`` / ``--allow-dir`` a JSON list of URLs or server paths), ``GET /healthz``,
``/readyz``, ``/v1/models``, ``/metrics``; the answers are the records of ``-f json``.

Starlette and not FastAPI: the routes need no schema layer, and Starlette's request streams
its body, so a size cap refuses a 2 GB upload after reading at most the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..console import stderr_line
from ..inputs.discover import Source
from ..records import path_display
from ..storage import is_uri, is_url
from .batcher import Batcher, QueueFull
from .metrics import Metrics

if TYPE_CHECKING:
    from ..engines import Engine
    from ..plan import RunPlan
    from ..request import ServeOptions

OPEN_PATHS = ("/healthz", "/readyz")  # probes answer without the token


class Refused(Exception):
    """A request answered with ``status`` and a one-line reason; ``kind`` counts it in the metrics."""

    def __init__(self, status: int, kind: str, reason: str, headers: dict | None = None):
        super().__init__(reason)
        self.status, self.kind, self.reason, self.headers = status, kind, reason, headers or {}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class State:
    engine: Engine
    plan: RunPlan
    options: ServeOptions
    settings: dict
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = False
    batcher: Batcher | None = None
    on_fatal: object = None  # called with a reason when the warm-up fails: the server stops


def build_app(state: State):
    from starlette.applications import Starlette
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.batcher = Batcher(
            state.engine,
            state.plan.batch_size,
            state.options.max_wait_ms / 1000,
            state.options.max_queue,
            on_batch=state.metrics.batch_size.observe,
        )
        state.batcher.start()
        warm = asyncio.get_running_loop().create_task(_warm_up(state))
        yield
        warm.cancel()
        await state.batcher.stop()

    routes = [
        Route("/v1/classify", _endpoint(state, _classify), methods=["POST"]),
        Route("/healthz", _endpoint(state, _healthz), methods=["GET"]),
        Route("/readyz", _endpoint(state, _readyz), methods=["GET"]),
        Route("/v1/models", _endpoint(state, _models), methods=["GET"]),
        Route("/metrics", _endpoint(state, _metrics), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return BearerToken(app, state.options.token, state.metrics) if state.options.token else app


async def _warm_up(state: State) -> None:
    """Open the runtime and run one full batch through it (beside the queue); ready only then."""
    import numpy as np

    size = state.plan.config.input_size
    gray = Source("<warm-up>", data=np.full((size, size, 3), 128, np.uint8))

    def full_batch() -> None:
        state.engine.start()
        list(state.engine.records([gray] * state.plan.batch_size, top_k=1))

    try:
        await asyncio.get_running_loop().run_in_executor(None, full_batch)
    except Exception as error:  # noqa: BLE001 - a model that cannot open: say why and stop serving
        stderr_line(f"error: the model did not start ({type(error).__name__}: {error})")
        if state.on_fatal:
            state.on_fatal()
        return
    state.ready = True
    stderr_line(f"ready: {state.engine.ran_on}, batches of up to {state.plan.batch_size}")


def _endpoint(state: State, handler):
    """The handler with its refusals as JSON answers, and every answer counted and timed."""
    from starlette.responses import JSONResponse

    async def endpoint(request):
        started = time.perf_counter()
        path = request.url.path
        try:
            response = await handler(state, request)
        except Refused as refused:
            state.metrics.errors.labels(refused.kind).inc()
            response = JSONResponse({"error": refused.reason}, refused.status, headers=refused.headers)
        state.metrics.requests.labels(path, str(response.status_code)).inc()
        state.metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    return endpoint


async def _healthz(state: State, request):
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "alive"})


async def _readyz(state: State, request):
    from starlette.responses import JSONResponse

    if not state.ready:
        return JSONResponse({"status": "warming up"}, 503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ready"})


async def _models(state: State, request):
    from starlette.responses import JSONResponse

    config = state.plan.config
    model = {
        "id": config.model,
        "classes": len(config.labels),
        "ran_on": state.engine.ran_on,
        "batch_size": state.plan.batch_size,
        "settings": state.settings,
    }
    return JSONResponse({"models": [model]})


async def _metrics(state: State, request):
    from starlette.responses import Response

    state.metrics.queue_depth.set(state.batcher.waiting if state.batcher else 0)
    body, content_type = state.metrics.text()
    return Response(body, headers={"Content-Type": content_type})


async def _classify(state: State, request):
    from starlette.responses import Response

    if not state.ready:
        raise Refused(503, "not_ready", "warming up: try again shortly (GET /readyz)", {"Retry-After": "1"})
    top_k = _top_k(request, state)
    sources = await _sources(state, request)
    if len(sources) > state.options.max_queue:
        raise Refused(413, "too_many", f"{len(sources)} images in one request: at most {state.options.max_queue}")
    try:
        records = await state.batcher.records(sources, top_k)
    except QueueFull:
        raise Refused(503, "queue_full", "the queue is full: try again shortly", {"Retry-After": "1"}) from None
    for record in records:
        state.metrics.images.labels("ok" if record.ok else "error").inc()
        if state.options.access_log and not record.ok:
            stderr_line(f"error: {path_display(record.path)}: {record.error}")
    status = 422 if len(records) == 1 and not records[0].ok else 200
    body = "[" + ", ".join(record.as_json() for record in records) + "]"
    return Response(body.encode(), status, media_type="application/json")


def _top_k(request, state: State) -> int:
    text = request.query_params.get("top_k")
    if text is None:
        return state.plan.top_k
    classes = len(state.plan.config.labels)
    if not text.isdigit() or not 1 <= int(text) <= classes:
        raise Refused(400, "bad_request", f"top_k must be a whole number from 1 to {classes}. Received: {text!r}")
    return int(text)


async def _sources(state: State, request) -> list[Source]:
    """The request's images: multipart files, a JSON list of URLs/paths, or the raw body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, state.options)
    if kind == "multipart/form-data":
        return await _files(request, body, state.options)
    if kind == "application/json":
        return _named(body, state.options)
    if not body:
        raise Refused(400, "bad_request", "no image: the body is empty")
    return [Source("-", data=body)]


async def _body(request, options: ServeOptions) -> bytes:
    """The whole body, at most ``max_body`` bytes (a bigger one is refused by its
    Content-Length, or once the cap is passed: the rest is never read) within ``read_timeout``
    seconds (a client that trickles its upload holds a connection that long, not for ever)."""
    cap = options.max_body
    too_large = Refused(
        413, "too_large", f"the body is larger than {cap:,} bytes (--max-body-mb)", {"Connection": "close"}
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise too_large

    async def read() -> bytes:
        from starlette.requests import ClientDisconnect

        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise too_large
                chunks.append(chunk)
        except ClientDisconnect:
            raise Refused(400, "disconnected", "the client went away before its body ended") from None
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), options.read_timeout)
    except asyncio.TimeoutError:
        raise Refused(
            408, "timeout", f"the body took longer than {options.read_timeout:g} s", {"Connection": "close"}
        ) from None


async def _files(request, body: bytes, options: ServeOptions) -> list[Source]:
    """Each file part of a multipart body (parsed by python-multipart through Starlette), named
    by its filename."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(
            max_files=options.max_queue, max_fields=options.max_queue, max_part_size=options.max_body
        )
    except MultiPartException as error:
        raise Refused(400, "bad_request", f"not a readable multipart body ({error.message})") from None
    sources = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            sources.append(Source(value.filename or name, data=await value.read()))
    await form.close()
    if not sources:
        raise Refused(400, "bad_request", "no image: the multipart body has no file part")
    return sources


def _named(body: bytes, options: ServeOptions) -> list[Source]:
    """``{"inputs": [URL or path, …]}``: URLs and URIs only with --allow-urls, server paths only
    inside an --allow-dir (after symbolic links are followed)."""
    try:
        inputs = json.loads(body)["inputs"]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise Refused(400, "bad_request", 'a JSON body is {"inputs": ["URL or path", …]}') from None
    allowed = [os.path.realpath(folder) for folder in options.allow_dirs]
    sources = []
    for item in inputs:
        if is_url(item) or is_uri(item):
            if not options.allow_urls:
                raise Refused(403, "forbidden", "this server fetches no URLs (start it with --allow-urls)")
            sources.append(Source(item))
            continue
        real = os.path.realpath(item)
        if not any(os.path.commonpath([real, folder]) == folder for folder in allowed):
            raise Refused(403, "forbidden", f"{path_display(item)}: not inside an --allow-dir of this server")
        sources.append(Source(real))
    return sources


class BearerToken:
    """Every path but the probes needs ``Authorization: Bearer TOKEN`` (compared in constant time)."""

    def __init__(self, app, token: str, metrics: Metrics):
        self.app, self.expected, self.metrics = app, f"Bearer {token}".encode(), metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                from starlette.responses import JSONResponse

                self.metrics.errors.labels("unauthorized").inc()
                answer = JSONResponse(
                    {"error": "a token is needed: Authorization: Bearer TOKEN"},
                    401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
