"""What every benchmark script shares: progress on stderr, one table of rows on stdout, and the
machine line (CPU model, cores, the ISA flags that decide the numbers) beside every figure."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

rows: list[tuple[str, str, str]] = []


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def record(what: str, value: str, note: str = "") -> None:
    rows.append((what, value, note))
    say(f"  {what}: {value} {note}")


def machine() -> str:
    flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", flags)
    isa = sorted({f for f in re.findall(r"\b(avx512\w*|amx\w*|avx2|avx_vnni|fma)\b", flags)})
    return f"{model.group(1) if model else platform.processor()}, {os.cpu_count()} cores, {' '.join(isa) or 'no AVX2'}"


def print_table(heading: str) -> None:
    print(f"\n{heading}\n")
    print("| measurement | value | note |\n|---|---|---|")
    for what, value, note in rows:
        print(f"| {what} | {value} | {note} |")
