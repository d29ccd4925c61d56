"""serve --engine ray: the model on Ray Serve replicas of a local Ray cluster — the replicas
gather concurrent images into batches (@serve.batch) and answer the local engine's records;
over HTTP (curl against a real server process) the same records as the CLI, readiness after
the replicas start, SIGTERM a clean stop."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SAMPLES, invoke
from test_app import CAT, Server, curl, image

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]
PHOTOS = sorted(SAMPLES.glob("*.jpg"))
CAT_BYTES = (SAMPLES / "cat.jpg").read_bytes()


def same_records(ours, reference):
    """Paths, errors and classes exact; scores to float32 rounding."""
    assert [r["path"] for r in ours] == [r["path"] for r in reference]
    for mine, theirs in zip(ours, reference):
        assert mine.get("error") == theirs.get("error")
        assert [p["index"] for p in mine.get("predictions", [])] == [p["index"] for p in theirs.get("predictions", [])]
        for p, q in zip(mine.get("predictions", []), theirs.get("predictions", [])):
            assert p["score"] == pytest.approx(q["score"], rel=1e-5, abs=1e-7)


def test_replicas_batch_concurrent_images_and_give_the_local_records(classic_file, tmp_path):
    """In process: the engine on Ray Serve; 12 images sent at once come back from batches of
    more than one, each record the local engine's (a broken image its error record)."""
    pytest.importorskip("ray.serve", reason="the ray extra is not installed")
    import ray

    from resnet_cli.config import resolve
    from resnet_cli.engines.ray_serve import RayServeEngine
    from resnet_cli.inputs.source import Source
    from resnet_cli.plan import make_plan
    from resnet_cli.request import EngineOptions, InputOptions, ModelRequest

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(CAT_BYTES[:2000])
    inputs = [*PHOTOS, broken]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        config = resolve(ModelRequest(weights=str(classic_file)), local=False)
        plan = make_plan(
            config, InputOptions(quiet=True), EngineOptions(engine="ray", batch_size=8), variable_batch=True
        )
        engine = RayServeEngine(plan, max_wait=0.2)
        engine.start()
        assert engine.ran_on.startswith("Ray Serve (1 replica, ")
        sources = [Source(str(p), data=p.read_bytes()) for p in inputs]
        with ThreadPoolExecutor(len(sources)) as pool:
            answers = list(pool.map(lambda s: engine.handle.classify.remote((s.path, s.data, 5)).result(), sources))
        assert max(answer["batch"] for answer in answers) > 1  # @serve.batch gathered them
        ours = [r.as_dict() for r in engine.records(sources)]
        engine.close()
    finally:
        ray.shutdown()
    local = json.loads(invoke("--weights", classic_file, "-f", "json", *inputs).stdout)
    same_records(ours, local)


def test_serve_on_ray_over_http(classic_file):
    """A real ``serve --engine ray`` process: ready once the replicas run, a photo's record equal
    to the CLI's, concurrent clients all answered, /v1/models naming Ray Serve, SIGTERM → 143."""
    pytest.importorskip("ray.serve", reason="the ray extra is not installed")
    server = Server("--weights", classic_file, "--engine", "ray", "--max-wait-ms", 20).wait_ready(300)
    try:
        status, body = curl(server, "/v1/classify", *image(CAT))
        assert status == 200, body
        same_records(
            json.loads(body), json.loads(invoke("--weights", classic_file, "-f", "json", "-", input=CAT_BYTES).stdout)
        )
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda photo: curl(server, "/v1/classify", *image(photo)), PHOTOS * 2))
        assert [status for status, _ in answers] == [200] * len(answers)
        assert "Ray Serve" in json.loads(curl(server, "/v1/models")[1])["models"][0]["ran_on"]
    finally:
        assert server.stop() == 143, server.stderr
    assert "stopped" in server.stderr
