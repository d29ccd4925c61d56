"""explain: a Grad-CAM heat-map of one photo for a class, blended over it, as a PNG (on the
Keras runtime: the CLI asks for it)."""

from __future__ import annotations

import numpy as np

from ..config import resolve
from ..console import stderr_line
from ..errors import ExitStatus, UserError, user_file
from ..inputs.decode import ImageError, decode, load_photo
from ..model.gradcam import class_activation_map, features_and_scores, overlay
from ..model.imagenet import class_index, find_class
from ..model.spec import architecture
from ..outputs.destination import prepare_output
from ..request import ModelRequest


def explain(
    request: ModelRequest,
    image: str,
    output: str,
    target_class: str | None = None,
    raw: str | None = None,
    quiet: bool = False,
) -> ExitStatus:
    from ..runtimes.keras_runtime import build_model

    try:
        target = find_class(target_class) if target_class else None
    except ValueError as error:
        raise UserError(f"--class: {error}") from None
    for path in (output, raw):
        if path:
            prepare_output(path)
    config = resolve(request)
    try:
        pixels = decode(image, config.decode)
        photo = load_photo(image)
    except ImageError as error:
        stderr_line(f"error: {image}: {error}")
        return ExitStatus.SOME_FAILED
    if not quiet:
        stderr_line("starting Keras and loading the weights…")
    model = build_model(config)
    arch = architecture(config.model)
    features, probabilities = features_and_scores(model, pixels, arch.feature_layer)
    target = int(np.argmax(probabilities)) if target is None else target
    cam = class_activation_map(features, model.get_layer(arch.top_layer).get_weights()[0], target)
    with user_file(output):
        overlay(photo, cam).save(output)
    if raw:
        with user_file(raw):
            np.save(raw, cam)
    wnid, label = class_index()[target]
    if not quiet:
        score = f"score {probabilities[target]:.4f}"
        stderr_line(f"{image}: heat-map for {label} ({wnid}, index {target}, {score}) → {output}")
    return ExitStatus.OK
