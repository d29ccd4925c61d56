"""engines.local: flat memory for any file count; a bug of ours is one internal-error record and one traceback."""

import gc
import json
import os
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import SAMPLES, make_folder

from resnet_cli.cli import main

ELEPHANT = SAMPLES / "elephant.jpg"


def _peak_bytes(folder: Path) -> tuple[int, int]:
    import tracemalloc

    from resnet_cli.engines.local import prediction_records, run
    from resnet_cli.inputs.decode import DecodeOptions
    from resnet_cli.inputs.discover import discover

    def predict(batch):  # a stand-in model: the pipeline's memory is what is measured
        scores = np.zeros((len(batch), 1000), np.float32)
        scores[:, 0] = batch.mean(axis=(1, 2, 3))
        return scores

    gc.collect()  # garbage of earlier tests is not this run's memory
    tracemalloc.start()
    count = 0
    for record in run(discover([str(folder)]), predict, prediction_records(5), DecodeOptions(), 16, 2):
        count += record.ok
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, peak


def test_memory_does_not_grow_with_the_number_of_files(tmp_path):
    small = make_folder(tmp_path / "small", 200, size=(32, 32))
    big_folder = tmp_path / "big"
    big_folder.mkdir()
    for i in range(2000):
        os.link(small[i % 200], big_folder / f"img{i:05d}.png")
    # The least of two runs each: tracemalloc also counts what other threads of the test
    # process allocate meanwhile (seen once in the full suite: +5.6 MB in one run).
    (count_small, peak_small), (count_big, peak_big) = (
        min(_peak_bytes(folder) for _ in range(2)) for folder in (tmp_path / "small", big_folder)
    )
    assert (count_small, count_big) == (200, 2000)
    assert peak_big < peak_small * 1.5 + 2_000_000, (peak_small, peak_big)


def test_a_bug_of_ours_is_an_internal_error_record_and_one_traceback(classic_file, tmp_path, monkeypatch):
    from resnet_cli.engines import local as pipeline

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(ELEPHANT.read_bytes())
    real_decode = pipeline.decode

    def buggy(path, options, explicit=True):
        if not path.endswith("b.jpg"):
            return real_decode(path, options, explicit)
        raise TypeError("a bug")

    monkeypatch.setattr(pipeline, "decode", buggy)
    monkeypatch.setattr(pipeline, "_internal_error_reported", pipeline.threading.Event())
    result = CliRunner().invoke(main, ["--weights", str(classic_file), "-f", "jsonl", str(tmp_path)])
    records = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert records["b.jpg"]["error"].startswith("internal error (TypeError: a bug)")
    assert "predictions" in records["a.jpg"] and "predictions" in records["c.jpg"]
    assert result.stderr.count("Traceback") == 1 and result.exit_code == 1
