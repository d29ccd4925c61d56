"""The HTML report's memory (issue #26): peak RSS of a run over 2,000 500×375 JPEGs with
-o report.html ÷ the same run with -o out.jsonl (bar: ≤ 1.15). The page is written as records
stream (thumbnails go out as they come, errors wait on disk), so it should hold no more than
the JSON lines do. HTML_MEMORY_PHOTOS=200 for a quick look.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import WORK, photo_folder, weights_file  # noqa: E402
from driver_memory import peak_rss_kib  # noqa: E402
from table import machine, print_table, record, say  # noqa: E402

PHOTOS = int(os.environ.get("HTML_MEMORY_PHOTOS", "2000"))


def main() -> None:
    say(f"machine: {machine()}")
    weights = weights_file()
    folder = photo_folder("html_memory", (500, 375), PHOTOS)
    paths = WORK / "html_memory_paths.txt"
    paths.write_text("".join(f"{p}\n" for p in sorted(folder.glob("*.jpg"))))
    warm = WORK / "html_memory_one.txt"  # the model into the cache before anything is measured
    warm.write_text(paths.read_text().split("\n", 1)[0] + "\n")
    peak_rss_kib(["--weights", str(weights), "-q", "-f", "jsonl", "-"], warm)
    peaks = {}
    for fmt in ("jsonl", "html"):
        out = WORK / f"html_memory_out.{fmt}"
        out.unlink(missing_ok=True)
        peak, seconds, code = peak_rss_kib(["--weights", str(weights), "-q", "-o", str(out), "-"], paths)
        peaks[fmt] = peak
        size = out.stat().st_size / 2**20 if out.exists() else 0
        record(
            f"{PHOTOS} photos -o out.{fmt}: peak RSS",
            f"{peak / 1024:.0f} MiB",
            f"{seconds:.0f} s, exit {code}, {size:.1f} MiB written",
        )
    record("html ÷ jsonl peak RSS", f"{peaks['html'] / max(peaks['jsonl'], 1):.3f}", "bar ≤ 1.15")
    print_table(f"HTML report memory ({PHOTOS} photos), machine: {machine()}", "html-memory")


if __name__ == "__main__":
    main()
