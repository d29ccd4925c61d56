"""cache: what the model cache holds (size, weights md5, options, last use), or clear it."""

from __future__ import annotations

import json
import time

from ..console import stderr_line
from ..errors import ExitStatus
from ..runtimes.model_cache import cached_models, clear_cache, compiled_files
from ..storage import cache_dir

OPTIONS_SHOWN = ("model", "pool1_padding", "bn_epsilon", "include_top", "pooling")


def cache(clear: bool = False, fmt: str = "table") -> ExitStatus:
    if clear:
        files, size = clear_cache()
        stderr_line(f"removed {files} file(s), {size / 2**20:.0f} MiB, from {cache_dir()}")
        return ExitStatus.OK
    models = cached_models()
    rows = [
        {
            "file": str(m.path),
            "size_mib": round(m.size / 2**20, 1),
            "weights_md5": m.options.get("weights_md5"),
            "precision": m.options.get("precision"),
            "head": m.options.get("head"),
            "options": {k: v for k, v in m.options.items() if k not in ("weights_md5", "precision", "head")},
            "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_used)),
        }
        for m in models
    ]
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return ExitStatus.OK
    for row in rows:
        print(_line(row))
    total = sum(m.size for m in models)
    compiled = sum(path.stat().st_size for path in compiled_files())
    stderr_line(
        f"{len(models)} cached model(s), {total / 2**20:.0f} MiB in {cache_dir() / 'onnx'}, and the runtimes' "
        f"compiled forms of them, {compiled / 2**20:.0f} MiB ('resnet-classify cache clear' removes both)"
    )
    return ExitStatus.OK


def _line(row: dict) -> str:
    options = row["options"]
    bits = f" {options['weight_bits']}-bit" if options.get("weight_bits") else ""  # int8's form, by the CPU's flags
    what = f"{row['precision'] or '?'}{bits}" + (f", head {row['head'][:12]}" if row["head"] else "")
    detail = ", ".join(f"{k}={options[k]}" for k in OPTIONS_SHOWN if k in options)
    detail = detail or "options unknown (an older version's file)"
    weights = f"weights {row['weights_md5'] or '?'}"
    return f"{row['last_used']}  {row['size_mib']:7.1f} MiB  {what:<10}  {weights}  {detail}  {row['file']}"
