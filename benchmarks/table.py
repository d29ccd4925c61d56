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


def cosines(a, b):
    """Row by row, the cosine between two sets of feature vectors (how reduced precision is judged)."""
    import numpy as np

    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cpu_kind() -> str:
    """The kind of CPU the numbers belong to, by the flags that decide them."""
    flags = cpu()[0]
    if "amx_int8" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512-vnni" if "avx512_vnni" in flags else "avx512"
    return "avx2-vnni" if "avx_vnni" in flags else "avx2" if "avx2" in flags else "other"


def print_table(heading: str, results: str | None = "bench") -> None:
    """The table on stdout and, for ``results``, in benchmarks/results/KIND.md (replaced: the
    latest run on this kind of CPU; the machine line is in its heading)."""
    table = [f"\n{heading}\n", "| measurement | value | note |\n|---|---|---|"]
    table += [f"| {what} | {value} | {note} |" for what, value, note in rows]
    print("\n".join(table))
    if results:
        folder = Path(__file__).parent / "results"
        folder.mkdir(exist_ok=True)
        name = f"{cpu_kind()}.md" if results == "bench" else f"{cpu_kind()}-{results}.md"
        title = f"# `make bench` ({results}) on {machine()}\n"
        (folder / name).write_text(title + "\n".join(table) + "\n")
        say(f"written to {folder / name}")


def cpu() -> tuple[set[str], str, float, int]:
    """(flags, vendor, clock in GHz, physical cores this process may use). The clock is what
    the kernel reports (/proc/cpuinfo "cpu MHz": the nominal clock in a VM, no turbo)."""
    text = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split()) if "flags" in text else set()
    vendor = (re.search(r"vendor_id\s*:\s*(\S+)", text) or [None, "?"])[1]
    clock = max((float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", text)), default=0.0) / 1000
    siblings = int((re.search(r"siblings\s*:\s*(\d+)", text) or [None, 1])[1])
    per_core = siblings // int((re.search(r"cpu cores\s*:\s*(\d+)", text) or [None, siblings])[1]) or 1
    return flags, vendor, clock, max(1, len(os.sched_getaffinity(0)) // per_core)


def macs_per_cycle(flags: set[str], vendor: str) -> dict[str, tuple[int, str]]:
    """Peak multiply-adds per cycle and core, per precision, from the ISA: fp32 two FMA pipes
    (512-bit on Intel AVX-512, 256-bit on AVX2 and on Zen 4's double-pumped AVX-512); bf16 2×
    fp32 with AVX512-BF16, AMX's tile unit 512; int8 4× fp32 with VNNI, AMX 1024, else 2×
    (vpmaddubsw pairs)."""
    wide = "avx512f" in flags and (vendor != "AuthenticAMD" or "avx512_vp2intersect" in flags)  # Zen 5: full width
    fp32 = (32, "2×512-bit FMA") if wide else (16, "2×256-bit FMA") if "fma" in flags else (4, "SSE")
    bf16 = (
        (512, "AMX-BF16") if "amx_bf16" in flags else (2 * fp32[0], "AVX512-BF16") if "avx512_bf16" in flags else fp32
    )
    if "amx_int8" in flags:
        int8 = (1024, "AMX-INT8")
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        int8 = (4 * fp32[0], "VNNI")
    else:
        int8 = (2 * fp32[0], "no VNNI")
    return {"fp32": fp32, "bf16": bf16, "int8": int8}


def physical_limits(macs_per_image: float) -> dict[str, tuple[float, str]]:
    """Images/s the arithmetic units could reach at most, per precision, and how it was
    computed: cores × clock × peak MACs per cycle ÷ the model's MACs per image."""
    flags, vendor, clock, cores = cpu()
    limits = {}
    for precision, (per_cycle, unit) in macs_per_cycle(flags, vendor).items():
        rate = cores * clock * 1e9 * per_cycle / macs_per_image
        how = f"{cores} cores × {clock:.2f} GHz × {per_cycle} MAC/cycle ({unit}) ÷ {macs_per_image / 1e9:.2f} GMAC"
        limits[precision] = (rate, how)
    return limits
