"""make test: a test whose Ray cluster dies under it fails alone; the run goes on and ends with
its summary line (Ray's driver, when its raylet dies, ends the whole process it runs in)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Its raylet killed mid-test: the driver's next call to the object store ends the process.
DYING_CLUSTER = """
import os, signal, subprocess
import numpy as np

def test_a_cluster_that_dies():
    import ray
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    big = ray.remote(lambda: np.ones(10_000_000))
    refs = [big.remote() for _ in range(3)]
    ray.get(refs[0])
    for pid in subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    for _ in range(5):
        ray.put(np.ones(10_000_000))
        ray.get(refs)

def test_the_next_one():
    assert True
"""


def make_test_options() -> list[str]:
    """The pytest options of the Makefile's test recipe (what CI runs)."""
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)[1]
    command = next(line for line in recipe.splitlines() if "-m pytest" in line)
    return command.split("-m pytest", 1)[1].split()


@pytest.mark.ray
@pytest.mark.slow
def test_a_dead_cluster_fails_its_test_not_the_run(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    (tmp_path / "test_dying.py").write_text(DYING_CLUSTER)
    (tmp_path / "conftest.py").write_text("")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *make_test_options(), "-p", "no:cacheprovider", "test_dying.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "crashed while running 'test_dying.py::test_a_cluster_that_dies'" in run.stdout
    assert re.search(r"^1 failed, 1 passed", run.stdout, re.M), run.stdout[-3000:]
