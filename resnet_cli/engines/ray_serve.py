"""``serve --engine ray``: the server's engine on Ray Serve — model replicas on the cluster's
nodes, each gathering the images of concurrent requests into its own batches (``@serve.batch``)
and decoding them where it runs; this process keeps the HTTP front (the same app, limits, token
and metrics as the local engine), so Serve's own HTTP proxies stay off.

A replica is the ray engine's model actor in Serve's clothes: the same settings and version
check on arrival, the same runtime, opened once; an image travels to it as its bytes (or the
path or URL a JSON body named, read there, as the ray engine's workers read them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from ray import serve

from ..config import ModelConfig
from ..console import stderr_line
from ..errors import UserError
from ..inputs.source import Source
from ..plan import RunPlan
from ..records import Record
from .ray_cluster import connect, import_ray
from .ray_plan import ACTOR_MEMORY, for_cluster
from .ray_worker import FAILED, OK, Predictor, decoded_rows, versions, worker_settings

APP = "resnet-classify"
DELETE_SECONDS = 30


@serve.deployment(name="classifier")
class Replica:
    """The ray engine's model actor (``Predictor``: the checks on arrival, one runtime opened
    once); ``classify`` is called once per image and answers from batches of up to the run's
    batch size, gathered within its wait, each image with its own top k."""

    def __init__(self, config: ModelConfig, batch_size: int, max_wait: float, settings: dict, driver_versions: dict):
        self.predictor = Predictor(config, batch_size, len(config.labels), settings, driver_versions)
        self.decode_options = config.decode
        self.classify.set_max_batch_size(batch_size)
        self.classify.set_batch_wait_timeout_s(max_wait)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def classify(self, items: list[tuple[str, object, int]]) -> list[dict]:
        return await asyncio.to_thread(self._classify, items)

    def _classify(self, items: list[tuple[str, object, int]]) -> list[dict]:
        rows = decoded_rows([Source(path, data=data) for path, data, _ in items], self.decode_options)
        scored = self.predictor(rows, top_k=max(wanted for *_, wanted in items))
        answers = []
        for status, error, index, score, (*_, wanted) in zip(
            scored["status"], scored["error"], scored["index"], scored["score"], items
        ):
            answer = {"batch": len(items)}  # what @serve.batch gathered
            if status == OK:
                answer.update(index=index[:wanted].tolist(), score=score[:wanted].tolist())
            else:
                answer["error"] = error if status == FAILED else "not an image"
            answers.append(answer)
        return answers


class RayServeEngine:
    """The Engine the server's batcher calls, its model on Ray Serve: ``start`` joins the
    cluster and waits for the replicas (the server's warm-up), ``records`` sends each image to
    them and gives back their records in order, ``close`` deletes the application."""

    def __init__(self, plan: RunPlan, max_wait: float):
        """Joins the cluster here, in the main thread: Ray's native signal handlers go in at
        that moment, and the server's own, set after them, must be the ones SIGTERM reaches."""
        from ..config import precision_shown

        self.plan, self.max_wait, self.handle = plan, max_wait, None
        self.connected_here = not import_ray().is_initialized()
        self.ray = connect(plan.ray_address, quiet=plan.quiet)
        self.ran_on, self.started = "", 0.0
        self.shown = f"{plan.config.runtime} {precision_shown(plan.config)}"

    def start(self, batch_size: int | None = None) -> None:
        import time

        if self.handle is not None:
            return
        config, cluster = for_cluster(self.ray, self.plan)
        logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its INFO lines are not ours to print
        serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})
        replica = Replica.options(
            num_replicas=cluster.actors,
            max_ongoing_requests=4 * cluster.batch_size,
            ray_actor_options={
                "num_cpus": cluster.cpus_per_actor,
                "num_gpus": cluster.gpus_per_actor,
                "memory": ACTOR_MEMORY,
                "runtime_env": {"env_vars": worker_settings()},
            },
        )
        arguments = (
            dataclasses.replace(config, threads=cluster.threads),
            cluster.batch_size,
            self.max_wait,
            worker_settings(),
            versions(),
        )
        try:
            self.handle = serve.run(replica.bind(*arguments), name=APP, route_prefix=None)
        except Exception as error:  # noqa: BLE001 - a replica that cannot start: one line
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise UserError(f"Ray Serve could not start the model replicas: {lines[-1] if lines else error}") from None
        self.ran_on = (
            f"Ray Serve ({cluster.actors} replica{'s' if cluster.actors != 1 else ''}, {self.shown}, "
            f"device {config.device})"
        )
        self.started = time.perf_counter()

    def records(
        self, sources: Iterable[Source], on_skip: Callable[[Source], None] | None = None, top_k: int | None = None
    ) -> Iterator[Record]:
        from ..model.imagenet import predictions

        self.start()
        k = top_k or self.plan.top_k
        sources = list(sources)
        answers = [self.handle.classify.remote((s.path, s.data, k)) for s in sources if s.error is None]
        answers.reverse()
        for source in sources:
            if source.error is not None:
                yield Record(source.path, error=source.error)
                continue
            answer = answers.pop().result()
            if "error" in answer:
                yield Record(source.path, error=answer["error"])
            else:
                row = predictions(np.array([answer["index"]]), np.array([answer["score"]]), self.plan.config.labels)
                yield Record(source.path, predictions=row[0])

    def close(self) -> None:
        """Our own local Ray ends, the application with it; on a cluster we joined, the
        application is deleted, waiting at most DELETE_SECONDS (a cluster gone away must not
        hold the stop for ever)."""
        import threading

        handle, self.handle = self.handle, None
        if self.connected_here:
            self.connected_here = False
            self.ray.shutdown()
        elif handle is not None:
            deleting = threading.Thread(target=serve.delete, args=(APP,), daemon=True)
            deleting.start()
            deleting.join(DELETE_SECONDS)
            if deleting.is_alive():
                stderr_line(f"warning: Ray Serve did not delete the application {APP!r} within {DELETE_SECONDS} s")

    def __enter__(self) -> RayServeEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
