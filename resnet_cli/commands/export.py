"""export: the ONNX model the onnx runtime uses (fp32 or int8), uint8 RGB in, probabilities
out, written where the user asks (the CLI asks for the onnx runtime)."""

from __future__ import annotations

import shutil

from ..config import precision_shown, resolve
from ..console import stderr_line
from ..errors import ExitStatus, user_file
from ..outputs.destination import prepare_output
from ..request import ModelRequest

# Where an exported int8 graph computes what it computed here (config.int8_weight_bits).
_EXACT_ON = {8: ", exact on CPUs with VNNI or AMX", 7: ", exact on any x86 CPU"}


def export(request: ModelRequest, output: str, quiet: bool = False) -> ExitStatus:
    from ..runtimes.model_cache import ensure_onnx_model

    prepare_output(output)
    config = resolve(request)
    model = ensure_onnx_model(config, quiet)
    with user_file(output):
        shutil.copyfile(model, output)
    if not quiet:
        size = config.input_size
        shapes = f"input uint8 [N, {size}, {size}, 3] RGB, output probabilities [N, {len(config.labels)}]"
        stderr_line(
            f"wrote {output} ({precision_shown(config)}{_EXACT_ON.get(config.weight_bits, '')}; {shapes}; "
            "class labels in its metadata)"
        )
    return ExitStatus.OK
