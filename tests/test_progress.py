"""progress: a log line every LOG_INTERVAL seconds off a terminal, none when asked."""

import re

from conftest import SAMPLES, invoke

ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


def test_progress_for_jobs_is_a_log_line_and_none_is_silent(classic_file, monkeypatch):
    """--progress auto off a terminal (a job's log) and log: a stderr line every LOG_INTERVAL
    seconds from the command's start — start-up included — with done/total, rate and the time
    since launch; none: nothing but the summary; stdout untouched."""
    from resnet_cli import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    for mode in ("auto", "log"):
        result = invoke("--weights", classic_file, "-f", "jsonl", "--progress", mode, ELEPHANT, CAT)
        assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2
        lines = [line for line in result.stderr.splitlines() if line.startswith("resnet-classify: progress: ")]
        assert lines and re.fullmatch(
            r"resnet-classify: progress: 0(/2)? done, starting \(\d+ s since launch\)", lines[0]
        ), result.stderr
        assert all(
            re.fullmatch(
                r"resnet-classify: progress: \d(/2)? done, (starting|[\d.]+ images/s(, ETA \d+ s)?) \(\d+ s since "
                r"launch\)",
                line,
            )
            for line in lines
        ), lines
    late = progress.LogProgress(launched=0.0)
    late.update(0, total=10)
    late.update(0, advance=4)
    late.first -= 2.0  # four done in the two seconds since the first record
    assert re.fullmatch(
        r"progress: 4/10 done, 2\.0 images/s, ETA 3 s \(\d+ s since launch\)", late.line(late.first + 2.0)
    )
    quiet = invoke("--weights", classic_file, "-f", "jsonl", "--progress", "none", ELEPHANT, CAT)
    assert "progress:" not in quiet.stderr and quiet.stderr.count("\n") == 1  # the summary only
