"""The README's examples are a contract: each one that needs no network, cluster or other
download runs as written, in a shell, in a folder holding the files it names."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow

# What an example needs that a test machine has not: each such example is left out, and why.
NOT_HERE = {
    "curl ": "the web",
    "s3://": "an object store",
    "--engine ray": "a Ray cluster",
    "--model resnet152": "ResNet152's weights (a 230 MB download)",
}


def examples() -> list[str]:
    """The command lines of the README's Examples block (comments stripped)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Examples\n+```sh\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_has_examples_and_this_test_runs_most_of_them():
    runnable = [line for line in examples() if not any(need in line for need in NOT_HERE)]
    assert len(examples()) >= 10 and len(runnable) >= len(examples()) - len(NOT_HERE)


@pytest.fixture(scope="module")
def folder(classic_file, tmp_path_factory):
    """Where the examples run: elephant.jpg, photos/ (a sub-folder too), big/, ~/Pictures/, PNGs."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copy(SAMPLES / "elephant.jpg", root)
    for name in ("photos", "big", "home/Pictures/2025"):
        for sample in sorted(SAMPLES.glob("*.jpg"))[:3]:
            (root / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(sample, root / name / sample.name)
    from PIL import Image

    Image.open(SAMPLES / "elephant.jpg").save(root / "photos" / "elephant.png")
    return root


@pytest.mark.parametrize("line", [line for line in examples()])
def test_a_readme_example_runs_as_written(line, folder, classic_file):
    missing = next((why for need, why in NOT_HERE.items() if need in line), None)
    if missing:
        pytest.skip(f"needs {missing}")
    if "| jq" in line and shutil.which("jq") is None:
        pytest.skip("needs jq")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(folder / "home"),
        "RESNET_CLI_WEIGHTS": str(classic_file),
    }
    for output in ("pictures.jsonl", "out.jsonl", "report.html"):
        (folder / output).unlink(missing_ok=True)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (line, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    wrote = any((folder / o).exists() for o in ("pictures.jsonl", "out.jsonl", "report.html"))
    assert result.stdout.strip() or wrote, line  # each example gives records or a file of them
