"""serve: the model loaded once behind HTTP (uvicorn running the server's Starlette app) until
SIGTERM or Ctrl-C, which stop the listening, answer what is in flight, then exit."""

from __future__ import annotations

import signal
import socket

from ..config import resolve
from ..console import stderr_line
from ..engines import open as open_engine
from ..errors import ExitStatus, UserError
from ..outputs.settings import describe
from ..plan import make_plan
from ..request import EngineOptions, InputOptions, ModelRequest, ServeOptions


def serve(request: ModelRequest, asked: EngineOptions, options: ServeOptions, top_k: int = 5) -> ExitStatus:
    import uvicorn

    from ..server.app import State, build_app

    config = resolve(request, local=asked.engine != "ray")
    plan = make_plan(config, InputOptions(quiet=True), asked, top_k=top_k, variable_batch=True)
    engine = _ray_serve(plan, options) if asked.engine == "ray" else open_engine(plan)
    listening = _listen(options.host, options.port)
    state = State(engine, plan, options, describe(config, top_k))
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(state),
            limit_concurrency=options.max_connections,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=30,
            access_log=options.access_log,
            log_level="info" if options.access_log else "warning",
            server_header=False,
        )
    )

    def stop() -> None:
        server.should_exit = True

    state.on_fatal = stop
    host, port = listening.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    stderr_line(f"serving {config.model} on http://{where}:{port} (POST /v1/classify; ready after its warm-up)")
    # uvicorn stops on SIGTERM/SIGINT (no new connections, the requests in flight answered),
    # then raises the signal again for the handler it found: these end the run with its status.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with state.engine:
            server.run(sockets=[listening])
        status = ExitStatus.OK if state.ready else ExitStatus.SOME_FAILED
    except _Terminated:
        status = ExitStatus.TERMINATED
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    stderr_line(f"stopped ({status.meaning})")
    return status


def _ray_serve(plan, options: ServeOptions):
    """The engine on Ray Serve, or how to install it."""
    from ..engines.ray_cluster import import_ray

    import_ray()
    try:
        from ..engines.ray_serve import RayServeEngine
    except ImportError:
        raise UserError('serve --engine ray needs Ray Serve: pip install "resnet-cli[ray]"') from None
    return RayServeEngine(plan, options.max_wait_ms / 1000)


class _Terminated(Exception):
    pass


def _terminated(signum, frame) -> None:
    raise _Terminated


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one line and port 0 names its port."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(2048)
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    return listening
