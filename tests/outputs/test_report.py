"""outputs.report: counts → one summary line → the exit status."""

import pytest

from resnet_cli.errors import ExitStatus
from resnet_cli.outputs.report import Report
from resnet_cli.records import Record


def _report(ok=0, failed=0, **changes) -> Report:
    report = Report(**changes)
    for n in range(ok):
        report.add(Record(f"{n}.jpg"))
    for n in range(failed):
        report.add(Record(f"bad{n}.jpg", error="not an image"))
    return report


@pytest.mark.parametrize(
    "counts, status",
    [
        ({"ok": 3}, ExitStatus.OK),
        ({"ok": 3, "failed": 1}, ExitStatus.SOME_FAILED),
        ({}, ExitStatus.SOME_FAILED),  # nothing found is not success
        ({"resumed": 4}, ExitStatus.OK),  # all done by an earlier run
        ({"ok": 3, "interrupted": True}, ExitStatus.INTERRUPTED),
        ({"ok": 3, "interrupted": True, "terminated": True}, ExitStatus.TERMINATED),
    ],
)
def test_the_exit_status_says_what_happened(counts, status):
    assert _report(**counts).exit_status == status


def test_the_summary_counts_each_kind_and_names_where_it_ran():
    report = _report(ok=2, failed=1, resumed=5, ran_on="cpu (onnx fp32)")
    report.skip()
    line = report.summary()
    assert line.startswith("2 classified, 1 failed, 1 skipped, 5 already done in ")
    assert "images/s after start-up) on cpu (onnx fp32); start-up" in line


def test_an_empty_run_and_an_interrupted_one_say_so():
    assert _report().summary().startswith("no images found: 0 classified")
    assert _report(ok=1, interrupted=True).summary().startswith("interrupted: 1 classified")
    assert _report(ok=1, interrupted=True, terminated=True).summary().startswith("terminated: ")
