"""The prepared GPU check (benchmarks/gpu_check.py) runs here on the CPU at small sizes, so it
is known to work before a GPU machine is lent to run it for real."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu(classic_file, dev_images, tmp_path):
    out = tmp_path / "gpu.json"
    dev = tmp_path / "dev"
    dev.mkdir()
    for path in dev_images[0][:6]:
        (dev / path.rsplit("/", 1)[-1]).write_bytes(open(path, "rb").read())
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/gpu_check.py"),
            "--device",
            "cpu",
            "--small",
            "--weights",
            str(classic_file),
            "--dev",
            str(dev),
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["device"] == "CPU" and result["dev_photos"] == 6
    assert result["top5_identical"] == 6  # the same CPU, fp32 both times
    assert result["bf16_cosine_min"] > 0.99
    assert set(result["rates"]) == {"fp32/8", "bf16/8"} and all(
        r["model_only"] > 0 and r["end_to_end"] > 0 for r in result["rates"].values()
    )
    assert "| fp32, batch 8: end to end, 32 JPEGs 500×375 |" in done.stdout
