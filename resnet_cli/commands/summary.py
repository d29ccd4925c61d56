"""summary: the network layer by layer, as the original walkthrough printed it (no weights)."""

from __future__ import annotations

from ..backend import import_keras
from ..config import resolve
from ..console import stderr_line
from ..errors import ExitStatus
from ..request import ModelRequest


def summary(request: ModelRequest) -> ExitStatus:
    config = resolve(request, with_weights=False)
    stderr_line("starting Keras…")
    import_keras(config.device)
    from ..model.resnet import from_config

    from_config(config).summary(print_fn=lambda line, **_: print(line))
    return ExitStatus.OK
