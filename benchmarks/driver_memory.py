"""Driver memory against the input count (issue #17, bar 14-ray-driver-memory): peak RSS of a
run over 1,000,000 paths on stdin ÷ a run over 100,000, for each engine, first a plain run and
then --resume on the output that already holds them all (every input skipped).

The paths name missing files, so every input is one error record and the run measures what the
driver holds per input (discovery, de-duplication, the resume index, Ray's rows), not photos.
Peak RSS is the CLI process's own (VmHWM at exit: Ray's raylet and workers are other processes).
DRIVER_MEMORY_COUNTS=10000,100000 for a quick look; DRIVER_MEMORY_ENGINES=ray for one engine.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench import ENV, weights_file  # noqa: E402
from table import machine, print_table, record, say  # noqa: E402

COUNTS = [int(n) for n in os.environ.get("DRIVER_MEMORY_COUNTS", "100000,1000000").split(",")]
# Runs the CLI in this process and writes its peak RSS (KiB) to a file as it exits. VmHWM, not
# getrusage's ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child would report
# this benchmark's own peak (it holds a million paths while writing them) instead of its own.
WRAPPER = """
import atexit, re, sys
def peak():
    with open("/proc/self/status") as status:
        open(RSS, "w").write(re.search(r"VmHWM:\\s*(\\d+) kB", status.read()).group(1))
atexit.register(peak)
from resnet_cli.cli import main
main()
"""


def peak_rss_kib(args: list[str], paths_file: Path) -> tuple[int, float, int]:
    """(peak RSS in KiB, seconds, exit status) of one CLI run reading ``paths_file`` on stdin."""
    with tempfile.NamedTemporaryFile(suffix=".rss", delete=False) as handle:
        rss_file = handle.name
    code = f"RSS = {rss_file!r}\n" + WRAPPER
    start = time.perf_counter()
    with open(paths_file, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
    seconds = time.perf_counter() - start
    peak = int(Path(rss_file).read_text() or 0)
    os.unlink(rss_file)
    return peak, seconds, done.returncode


def main() -> None:
    say(f"machine: {machine()}")
    work = ROOT / ".bench" / "driver_memory"
    work.mkdir(parents=True, exist_ok=True)
    weights = weights_file()
    engines = [
        e
        for e in os.environ.get("DRIVER_MEMORY_ENGINES", "local,ray").split(",")
        if e != "ray" or importlib.util.find_spec("ray")
    ]
    warm_up = work / "one_path.txt"  # builds the int8 model into the cache before anything is measured
    warm_up.write_text("/nonexistent/one.jpg\n")
    peak_rss_kib(["--weights", str(weights), "--precision", "int8", "-q", "-"], warm_up)
    for engine in engines:
        peaks = {}
        for count in COUNTS:
            paths_file = work / f"paths_{count}.txt"
            if not paths_file.exists():
                paths_file.write_text(
                    "".join(f"/nonexistent/photos/n{i % 1000:08d}/ILSVRC2012_val_{i:08d}.JPEG\n" for i in range(count))
                )
            out = work / f"out_{engine}_{count}.jsonl"
            out.unlink(missing_ok=True)
            common = [
                "--weights",
                str(weights),
                "--engine",
                engine,
                "--precision",
                "int8",
                "-f",
                "jsonl",
                "-o",
                str(out),
                "-",
            ]
            for mode, extra in (("run", []), ("--resume", ["--resume"])):
                peak, seconds, status = peak_rss_kib([*common, *extra], paths_file)
                lines = sum(1 for _ in open(out, "rb"))
                peaks[mode, count] = peak
                record(
                    f"{engine} engine, {count:,} missing paths on stdin, {mode}",
                    f"{peak / 1024:.0f} MiB peak RSS",
                    f"({seconds:.0f} s, exit {status}, {lines:,} records in the output)",
                )
        small, big = COUNTS[0], COUNTS[-1]
        for mode in ("run", "--resume"):
            record(
                f"{engine} engine {mode}: peak RSS {big:,} ÷ {small:,} inputs",
                f"{peaks[mode, big] / peaks[mode, small]:.3f}",
                "(bar: ≤ 1.05)",
            )
    print_table(f"Machine: {machine()}", "driver-memory")


if __name__ == "__main__":
    main()
