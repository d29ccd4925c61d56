"""Everything the tool says goes to stderr, one prefixed line at a time: stdout is for data."""

from __future__ import annotations

import sys

PROGRAM = "resnet-classify"


def stderr_line(message: str) -> None:
    sys.stderr.write(f"{PROGRAM}: {message}\n")
    sys.stderr.flush()
