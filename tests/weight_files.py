"""Weight files in the official HDF5 layouts, written from any weights — for the tests and
benchmarks on machines where the ~100 MB pretrained files cannot be downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resnet_cli.model.weights import keras_name

_CLASSIC_SUFFIXES = {
    1: ("W",),
    2: ("W", "b"),  # Conv2D / Dense: kernel, bias
    4: ("gamma", "beta", "running_mean", "running_std"),  # BatchNormalization (Keras 1 names)
}
_KERAS_SUFFIXES = {1: ("kernel",), 2: ("kernel", "bias"), 4: ("gamma", "beta", "moving_mean", "moving_variance")}


def _fixed_bytes(names) -> np.ndarray:
    """Fixed-length byte strings, as Keras' HDF5 writer stores name lists (dtype |S…)."""
    return np.array([n.encode() for n in names], dtype="S") if names else np.zeros(0, dtype="S1")


def model_weights(model) -> dict[str, list[np.ndarray]]:
    """{layer name: arrays} of every weighted layer of a Keras model."""
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def random_weights(
    images: np.ndarray, seed: int = 0, pool1_padding: str = "same", bn_epsilon: float = 1e-5
) -> dict[str, list[np.ndarray]]:
    """Random ResNet50 weights that behave like trained ones on ``images`` (uint8 RGB batch):
    activations stay in range (conv1 scaled to the pixel range, small residual-branch gammas,
    BatchNorm statistics that are really used), and fc1000 is centred on the images' mean
    feature so the top classes differ from photo to photo instead of saturating."""
    import keras

    from resnet_cli.model.resnet import resnet50

    model = resnet50(preprocess=True, pool1_padding=pool1_padding, bn_epsilon=bn_epsilon)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = layer.get_weights()
        if len(arrays) == 4:  # gamma, beta, moving mean, moving variance
            shape = arrays[0].shape
            low, high = (0.1, 0.3) if layer.name.endswith("2c") else (0.8, 1.2)
            arrays = [
                rng.uniform(low, high, shape),
                rng.normal(0, 0.1, shape),
                rng.normal(0, 0.1, shape),
                rng.uniform(0.8, 1.2, shape),
            ]
        else:
            kernel, bias = arrays
            fan_in = int(np.prod(kernel.shape[:-1]))
            scale = np.sqrt(2.0 / fan_in) / (64.0 if layer.name == "conv1" else 1.0)
            arrays = [rng.normal(0, scale, kernel.shape), rng.normal(0, 0.05, bias.shape)]
        layer.set_weights([a.astype(np.float32) for a in arrays])
    features = keras.Model(model.input, model.get_layer("flatten").output).predict(images, verbose=0)
    model.get_layer("fc1000").set_weights(_centred_classifier(rng, features, 1000))
    return model_weights(model)


def numpy_classic_file(path: Path, images: np.ndarray, layer_names: list[str], seed: int = 0) -> Path:
    """The fast lane's ResNet50 file in the classic layout, made by numpy and h5py alone (no
    Keras): ``random_weights``' recipe, shapes from the stage table, and fc1000 centred on the
    pooled features our own ONNX graph computes for ``images``."""
    import dataclasses

    from resnet_cli.config import resolve
    from resnet_cli.model.spec import _convs, architecture, weighted_layers
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import open_session

    arch = architecture("resnet50")
    names = weighted_layers(arch, include_top=False)
    convs, bns, width = _convs(arch, 224)
    rng = np.random.default_rng(seed)
    weights = {}
    for conv, bn, (_, size, channels_in, channels_out, _), channels in zip(names[0::2], names[1::2], convs, bns):
        scale = np.sqrt(2.0 / (size * size * channels_in)) / (64.0 if conv == "conv1" else 1.0)
        weights[conv] = [
            rng.normal(0, scale, (size, size, channels_in, channels_out)),
            rng.normal(0, 0.05, channels_out),
        ]
        low, high = (0.1, 0.3) if bn.endswith("2c") else (0.8, 1.2)
        weights[bn] = [
            rng.uniform(low, high, channels),
            rng.normal(0, 0.1, channels),
            rng.normal(0, 0.1, channels),
            rng.uniform(0.8, 1.2, channels),
        ]
    weights["fc1000"] = [np.zeros((width, 1000)), np.zeros(1000)]
    weights = {name: [a.astype(np.float32) for a in arrays] for name, arrays in weights.items()}
    draft = write_weights(path.with_name("draft-" + path.name), weights, "classic", list(weights))
    config = dataclasses.replace(
        resolve(ModelRequest(weights=str(draft), runtime="onnx", device="cpu")).features(), precision="fp32"
    )
    features = open_session(ensure_onnx_model(config, quiet=True)).run(None, {"images": images})[0]
    weights["fc1000"] = _centred_classifier(rng, features, 1000)
    draft.unlink()
    return write_weights(path, weights, "classic", layer_names)


def _centred_classifier(rng, features: np.ndarray, classes: int) -> list[np.ndarray]:
    """A random classifier centred on the images' mean feature, scaled to their spread: the top
    classes differ from photo to photo instead of saturating."""
    mean, std = features.mean(0), features.std(0) + 1e-3
    width = features.shape[1]
    kernel = rng.normal(0, 1, (width, classes)) / float(np.median(std)) / np.sqrt(width) * 4
    return [kernel.astype(np.float32), (-(mean @ kernel)).astype(np.float32)]


def well_scaled(model, images: np.ndarray, seed: int = 0, top_layer: str = "predictions") -> dict:
    """Random weights for any ResNet Keras model (ours or keras.applications'), set in place
    and returned as {layer name: arrays}: He-scaled kernels, each residual branch's last
    layer small (its BN gamma, or v2's bare ``_3_conv``), and the BatchNorm statistics those of
    ``images`` (the model's own input: uint8 for ours, preprocessed for keras.applications')
    as each layer really sees them — one training-mode pass with momentum 0 — so scores differ
    from photo to photo; the top layer centred on the images' mean feature."""
    import keras

    rng = np.random.default_rng(seed)
    norms, preact = [], _preact(model)
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            low, high = (0.1, 0.3) if layer.name.endswith(("_3_bn", "2c")) else (0.8, 1.2)
            shape = arrays[0].shape
            arrays = [rng.uniform(low, high, shape), rng.normal(0, 0.1, shape), np.zeros(shape), np.ones(shape)]
            layer.momentum = 0.0
            norms.append(layer)
        else:
            kernel = arrays[0]
            fan_in = int(np.prod(kernel.shape[:-1]))
            scale = np.sqrt(2.0 / fan_in) * (0.2 if preact and layer.name.endswith("_3_conv") else 1.0)
            arrays = [rng.normal(0, scale, kernel.shape)] + [rng.normal(0, 0.05, a.shape) for a in arrays[1:]]
        layer.set_weights([a.astype(np.float32) for a in arrays])
    model(images, training=True)  # momentum 0: the moving statistics become these images' own
    for layer in norms:
        layer.momentum = 0.99
    pooled = model.get_layer(top_layer).input
    features = np.asarray(keras.Model(model.input, pooled)(images, training=False))
    classes = model.get_layer(top_layer).get_weights()[1].shape[0]
    model.get_layer(top_layer).set_weights(_centred_classifier(rng, features, classes))
    return model_weights(model)


def _preact(model) -> bool:
    return any(layer.name.endswith("_preact_bn") for layer in model.layers)


def write_weights(path, weights: dict[str, list[np.ndarray]], layout: str = "classic", layer_names=None) -> Path:
    """Write ``weights`` as the official file would hold them.

    classic: Keras-1 file — root attribute ``layer_names`` only (pass the real 177-name list),
    one group per weighted layer with ``weight_names`` and a dataset per weight; classic names.
    keras: tf.keras 2 file — ``layer_names``, ``backend``, ``keras_version``; current names
    (ResNet50's classic names are renamed, the other members' are already theirs); datasets
    under ``<layer>/<layer>/<weight>:0``. ``layer_names``: every layer, weights or not (the
    official files list them all); default: the weighted ones.
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as handle:
        if layout == "classic":
            names = list(layer_names) if layer_names is not None else ["input_1", *weights]
            handle.attrs["layer_names"] = _fixed_bytes(names)
            for name in names:
                group = handle.create_group(name)
                arrays = weights.get(name, [])
                weight_names = [f"{name}_{s}:0" for s in _CLASSIC_SUFFIXES[len(arrays)]] if arrays else []
                group.attrs["weight_names"] = _fixed_bytes(weight_names)
                for weight_name, array in zip(weight_names, arrays):
                    group.create_dataset(weight_name, data=array)
        elif layout == "keras":
            names = list(layer_names) if layer_names is not None else ["input_1", *(keras_name(n) for n in weights)]
            handle.attrs["layer_names"] = _fixed_bytes(names)
            handle.attrs["backend"] = b"tensorflow"
            handle.attrs["keras_version"] = b"2.2.4"
            by_name = {keras_name(n): arrays for n, arrays in weights.items()}
            for name in names:
                arrays = by_name.get(name, [])
                group = handle.create_group(name)
                weight_names = [f"{name}/{s}:0" for s in _KERAS_SUFFIXES[len(arrays)]] if arrays else []
                group.attrs["weight_names"] = _fixed_bytes(weight_names)
                for weight_name, array in zip(weight_names, arrays):
                    group.create_dataset(weight_name, data=array)
        else:
            raise ValueError(f"layout must be 'classic' or 'keras'. Received: layout={layout!r}")
    return path
