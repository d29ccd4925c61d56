"""The command line: parse, build an Options, call commands.*, turn user errors into one line.

Imports nothing heavy at module level, so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import sys

import click

from .options import DEVICES, ENGINES, FORMATS, PRECISIONS, DecodeOptions, Options

_RUNTIMES = ("auto", "keras", "onnx")
_RESIZES = ("stretch", "crop")
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
_POOL1 = ("same", "pad1", "valid")


class DefaultGroup(click.Group):
    """``resnet-classify PHOTO…`` means ``resnet-classify classify PHOTO…``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["classify", *args]
        return super().parse_args(ctx, args)


def model_options(func):
    """Options that pick the weights and the network's numerics (shared by all commands)."""
    for option in reversed(
        [
            click.option("--weights", metavar="PATH", help="Weight file (.h5, classic or current Keras layout). Default: $RESNET_CLI_WEIGHTS, then the Keras cache, then download."),
            click.option("--offline", is_flag=True, help="Never download the weights."),
            click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="Where the Keras runtime runs."),
            click.option("--runtime", type=click.Choice(_RUNTIMES), default="auto", show_default=True, help="auto = onnx when ONNX Runtime is installed (fastest on CPU, no TensorFlow start-up), else keras."),
            click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True, help="int8: statically quantized ONNX model (onnx runtime). bf16: Keras mixed precision where the CPU (AVX512-BF16/AMX) or a GPU computes in bf16, else fp32 with a warning."),
            click.option("--calibration", metavar="DIR", help="Images to calibrate int8 on (default: the bundled sample images)."),
            click.option("--pool1-padding", type=click.Choice(_POOL1), default=None, help="Max-pool after conv1: same (Caffe, default), pad1 (keras.applications), valid (walkthrough)."),
            click.option("--bn-epsilon", type=float, default=None, help="BatchNormalization epsilon (default 1e-5, Caffe's)."),
        ]
    ):
        func = option(func)
    return func


def input_options(func):
    """Options that say which files and how they are read (shared by classify/evaluate/embed)."""
    for option in reversed(
        [
            click.argument("inputs", nargs=-1, metavar="PATHS…"),
            click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders."),
            click.option("--hidden", "include_hidden", is_flag=True, help="Include hidden files and folders."),
            click.option("-b", "--batch-size", type=click.IntRange(1, 1024), default=32, show_default=True),
            click.option("--workers", type=click.IntRange(0, 64), default=0, help="Decode threads (0 = one per core, at least 2)."),
            click.option("--threads", type=click.IntRange(0, 256), default=0, help="Inference threads (0 = one per core)."),
            click.option("--resize", type=click.Choice(_RESIZES), default="stretch", show_default=True, help="stretch: squash to 224×224 (keras.utils.load_img); crop: shorter side 256, centre 224."),
            click.option("--interpolation", type=click.Choice(_INTERPOLATIONS), default="nearest", show_default=True),
            click.option("--fast-decode", "fast_jpeg", is_flag=True, help="Decode big JPEGs at reduced scale (faster; pixels differ slightly)."),
            click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary on stderr."),
        ]
    ):
        func = option(func)
    return func


def _options(**kwargs) -> Options:
    decode = DecodeOptions(
        resize=kwargs.pop("resize", "stretch"),
        interpolation=kwargs.pop("interpolation", "nearest"),
        fast_jpeg=kwargs.pop("fast_jpeg", False),
    )
    kwargs["inputs"] = tuple(kwargs.get("inputs", ()))
    return Options(decode=decode, **kwargs)


def _call(command, options: Options) -> None:
    """Run a command; every user-facing failure is one stderr line, never a traceback."""
    from .errors import UserError
    from .output import stderr_line
    from .weights import WeightsError

    try:
        code = command(options)
    except (UserError, WeightsError) as error:
        stderr_line(f"error: {error}")
        code = 1
    except KeyboardInterrupt:
        stderr_line("interrupted")
        code = 130
    sys.exit(code)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resnet-cli", prog_name="resnet-classify")
def main():
    """Classify images with the pretrained ImageNet ResNet50.

    \b
    resnet-classify photo.jpg                  top-5 classes of one photo
    resnet-classify -r photos/ --format jsonl  a whole folder, one JSON line per image
    find . -name '*.jpg' | resnet-classify -   paths from stdin
    resnet-classify summary                    the network, layer by layer

    Exit status: 0 all classified, 1 some inputs failed, 2 usage error, 130 interrupted.
    """


@main.command()
@input_options
@model_options
@click.option("-k", "--top-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Classes per image.")
@click.option("-f", "--format", type=click.Choice(FORMATS), default="table", show_default=True, help="table for people; json, jsonl, csv for programs.")
@click.option("-o", "--output", metavar="FILE", help="Write records to FILE (or to part-N files in DIR/) instead of stdout.")
@click.option("--resume", is_flag=True, help="With --output (jsonl/csv): skip inputs already there, append the rest.")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True, help="ray: run on a Ray cluster with Ray Data (needs the ray extra).")
@click.option("--ray-address", metavar="ADDRESS", help="Ray cluster to join (default: start a local Ray on this machine).")
@click.option("--ray-actors", type=click.IntRange(1, 100000), help="Model actors (default: autoscale to the cluster's CPUs, one per GPU).")
def classify(**kwargs):
    """Classify images (the default command): files, folders, or - for paths on stdin."""
    if not kwargs["inputs"]:
        raise click.UsageError("no input: give image files, folders, or - to read paths from stdin.")
    from . import commands

    _call(commands.classify, _options(**kwargs))


@main.command()
@model_options
def summary(**kwargs):
    """Print the model summary (layers, shapes, 25,636,712 parameters)."""
    from . import commands

    _call(commands.summary, _options(**kwargs))


@main.command()
@input_options
@model_options
@click.option("--labels", metavar="CSV", help="file,class_index or file,wnid. Default: wnid folders (n01440764/…) or wnid file-name prefixes (n01440764_….JPEG).")
@click.option("-f", "--format", type=click.Choice(("table", "json")), default="table", show_default=True)
def evaluate(**kwargs):
    """Top-1 / top-5 accuracy on labeled images (folders are searched recursively)."""
    if not kwargs["inputs"]:
        raise click.UsageError("no input: give labeled image files or folders.")
    from . import commands

    _call(commands.evaluate, _options(**kwargs))


@main.command()
@input_options
@model_options
@click.option("-o", "--output", required=True, metavar="FILE", help="features.npz (features + paths), or features.npy with features.txt of paths.")
@click.option("--normalize", is_flag=True, help="L2-normalise each vector.")
def embed(**kwargs):
    """2048-d pooled ResNet50 features of images, for search and clustering."""
    if not kwargs["inputs"]:
        raise click.UsageError("no input: give image files, folders, or -.")
    from . import commands

    _call(commands.embed, _options(**kwargs))


@main.command()
@click.argument("image", metavar="IMAGE")
@model_options
@click.option("-o", "--output", required=True, metavar="FILE.png", help="Heat-map blended over the photo.")
@click.option("--class", "target_class", metavar="N|WNID|LABEL", help="Class to explain (default: the top-1).")
@click.option("--raw", metavar="FILE.npy", help="Also save the bare 7×7 map (values in [0, 1]).")
@click.option("--resize", type=click.Choice(_RESIZES), default="stretch", show_default=True)
@click.option("--interpolation", type=click.Choice(_INTERPOLATIONS), default="nearest", show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def explain(image, **kwargs):
    """Grad-CAM heat-map on res5c: where the network saw the class (Keras runtime)."""
    from . import commands

    kwargs.pop("runtime", None)
    _call(commands.explain, _options(inputs=(image,), runtime="keras", **kwargs))


@main.command()
@model_options
@click.option("-o", "--output", required=True, metavar="FILE.onnx")
@click.option("-q", "--quiet", is_flag=True)
def export(**kwargs):
    """Write the ONNX model (uint8 RGB in, probabilities out; --precision int8 for the quantized one)."""
    from . import commands

    kwargs.pop("runtime", None)
    _call(commands.export, _options(runtime="onnx", **kwargs))
