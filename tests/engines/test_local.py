"""engines.local: flat memory for any file count; a bug of ours is one internal-error record and one traceback."""

import gc
import json
import os
from pathlib import Path

import numpy as np
import pytest
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


@pytest.mark.slow
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


def test_decoding_in_turns_waits_for_the_model_and_gives_the_same_records(tmp_path, monkeypatch):
    """decode_ahead=False: a batch decodes only once the model is done with the one before
    (no decoder beside the engine's threads); the records are those of decoding ahead."""
    import threading

    from resnet_cli.engines import local
    from resnet_cli.inputs.decode import DecodeOptions
    from resnet_cli.inputs.discover import discover

    make_folder(tmp_path / "photos", 40, size=(40, 30))
    events, lock = [], threading.Lock()
    decode_source = local.decode_source

    def logged_decode(source, options):
        with lock:
            events.append("decode")
        return decode_source(source, options)

    def predict(batch):
        import time

        with lock:
            events.append(f"predict {len(batch)}")
        time.sleep(0.3)  # long enough for decoders running ahead to show
        with lock:
            events.append("done")
        return np.tile(batch.mean(axis=(1, 2, 3))[:, None], (1, 1000)).astype(np.float32)

    monkeypatch.setattr(local, "decode_source", logged_decode)
    records = {}
    for ahead in (False, True):
        events.clear()
        found = discover([str(tmp_path / "photos")])
        out = local.run(found, predict, local.prediction_records(3), DecodeOptions(), 16, 2, decode_ahead=ahead)
        records[ahead] = [(r.path, [p.index for p in r.predictions]) for r in out]
        first = events[: events.index("done")]
        if not ahead:
            assert events == [*["decode"] * 16, "predict 16", "done"] * 2 + [*["decode"] * 8, "predict 8", "done"]
        else:
            assert first.count("decode") > 16  # the next batches decoded while the model ran
    assert records[False] == records[True] and len(records[False]) == 40
