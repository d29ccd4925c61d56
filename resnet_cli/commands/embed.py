"""embed: the 2048-d pooled features of photos — as Parquet or JSON lines (a file, a URI, a
shard folder) with everything classify promises about outputs (--resume, one writer, nothing
lost), or as .npz (features + paths) / .npy with a .txt of paths beside it, written at the end."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .. import engines
from ..config import resolve
from ..console import stderr_line
from ..errors import ExitStatus, user_file
from ..model.spec import FEATURES
from ..outputs.destination import prepare_output
from ..outputs.report import Report
from ..plan import make_plan
from ..request import EngineOptions, InputOptions, ModelRequest, OutputOptions
from ..storage import write_atomic
from .stream import counted, normalized, skipper, sources


def embed(
    request: ModelRequest,
    inputs: InputOptions,
    asked: EngineOptions,
    output: str,
    normalize: bool = False,
    resume: bool = False,
    overwrite: bool = False,
) -> ExitStatus:
    if not output.endswith((".npz", ".npy")):
        from .classify import write_records

        fmt = "parquet" if output.endswith(("/", ".parquet")) else None
        asked_output = OutputOptions(format=fmt, output=output, resume=resume, overwrite=overwrite)
        return write_records(request, inputs, asked, asked_output, features=True, normalize=normalize)
    paths_file = Path(output).with_suffix(".txt") if output.endswith(".npy") else None
    prepare_output(output)
    if paths_file:
        prepare_output(str(paths_file))
    config = resolve(request, include_top=False, pooling="avg", local=asked.engine != "ray")
    report = Report(verb="embedded")
    paths, vectors = [], []
    with engines.open(make_plan(config, inputs, asked)) as engine:
        found = engine.records(sources(inputs, whole=asked.engine == "ray"), skipper(inputs, report))
        for record in counted(engine, normalized(found) if normalize else found, report):
            if record.ok:
                paths.append(record.path)
                vectors.append(np.asarray(record.vector, dtype=np.float32))
    features = np.stack(vectors) if vectors else np.zeros((0, FEATURES), np.float32)
    buffer = io.BytesIO()
    with user_file(output):
        if paths_file is None:
            np.savez(buffer, features=features, paths=np.array(paths, dtype=str))
        else:
            np.save(buffer, features)
            write_atomic(paths_file, "".join(p + "\n" for p in paths).encode())
        write_atomic(Path(output), buffer.getvalue())
    if not inputs.quiet:
        stderr_line(report.summary())
    return report.exit_status
