"""The command line: parse, check, build the requests, call commands.*; nothing else.

Every bad option value or impossible combination is a usage error (exit 2, Click's message)
before any weights are looked for; every other user-facing failure is one stderr line.
Imports nothing heavy at module level, so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import sys

import click

from .options import DEVICES, ENGINES, FORMATS, RUNTIMES, InputOptions, ModelRequest, OutputOptions, conflicts
from .spec import INTERPOLATIONS, POOL1_PADDINGS, PRECISIONS, RESIZES


class DefaultGroup(click.Group):
    """``resnet-classify PHOTO…`` means ``resnet-classify classify PHOTO…``, and options may
    stand before the subcommand as in git (``resnet-classify --weights W explain …``): they
    are moved behind it, never swallowed by an implicit classify."""

    default_command = "classify"

    def _value_options(self) -> set[str]:
        """Every option name of every subcommand that takes a value (its next word is data)."""
        names = set()
        for command in self.commands.values():
            for param in command.params:
                if isinstance(param, click.Option) and not param.is_flag and not param.count:
                    names.update(param.opts)
        return names

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = self._with_command_first(list(args))
        return super().parse_args(ctx, args)

    def _with_command_first(self, args: list[str]) -> list[str]:
        takes_value = self._value_options()
        index, position = 0, None
        while index < len(args):
            word = args[index]
            if word == "--":
                break
            if word in self.commands:
                position = index
                break
            if not word.startswith("-") or word == "-":
                break  # a photo: the implicit classify
            index += 2 if (word in takes_value and "=" not in word) else 1
        if position is None:
            return [self.default_command, *args]
        return [args[position], *args[:position], *args[position + 1 :]]

    def format_help(self, ctx, formatter):
        """The group's help, then the options of the default command (what most runs use)."""
        super().format_help(ctx, formatter)
        command = self.commands[self.default_command]
        with ctx.scope(cleanup=False):
            sub = click.Context(command, info_name=self.default_command, parent=ctx)
            rows = [r for r in (p.get_help_record(sub) for p in command.get_params(sub)) if r]
        with formatter.section(f"Options of {self.default_command} (the default command)"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx, incomplete):
        """Subcommand names, and (the implicit classify) file paths."""
        from click.shell_completion import CompletionItem

        items = super().shell_complete(ctx, incomplete)
        if not incomplete.startswith("-"):
            items.append(CompletionItem(incomplete, type="file"))
        return items


def _options(decorators):
    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


weights_options = _options(
    [
        click.option("--weights", metavar="PATH", type=click.Path(), help="Weight file (.h5, classic or current Keras layout). Default: $RESNET_CLI_WEIGHTS, then the Keras cache, then download."),
        click.option("--offline", is_flag=True, help="Never download the weights."),
    ]
)
numerics_options = _options(
    [
        click.option("--pool1-padding", type=click.Choice(tuple(POOL1_PADDINGS)), default=None, help="Max-pool after conv1: same (Caffe, the weights' own), pad1 (keras.applications), valid (walkthrough)."),
        click.option("--bn-epsilon", type=click.FloatRange(0, min_open=True), default=None, help="BatchNormalization epsilon, > 0 (default: the weights' own, 1e-5 as in Caffe)."),
    ]
)
device_option = click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="Where the model runs.")
runtime_options = _options(
    [
        device_option,
        click.option("--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True, help="auto = onnx when ONNX Runtime is installed (fastest on CPU, no TensorFlow start-up), else keras."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True, help="int8: statically quantized ONNX model (onnx runtime). bf16: Keras mixed precision where the CPU (AVX512-BF16/AMX) or a GPU computes in bf16, else fp32 with a warning."),
        click.option("--calibration", metavar="DIR", type=click.Path(file_okay=False), help="With --precision int8: images to calibrate on (default: the bundled sample images)."),
        click.option("--threads", type=click.IntRange(0, 256), default=0, help="Inference threads (0 = one per core)."),
    ]
)
decode_options = _options(
    [
        click.option("--resize", type=click.Choice(RESIZES), default=None, help="stretch (the weights' own): squash to 224×224 as keras.utils.load_img; crop: shorter side 256, centre 224."),
        click.option("--interpolation", type=click.Choice(INTERPOLATIONS), default=None, help="Resampling filter (default: the weights' own, nearest)."),
    ]
)
fast_decode_option = _options(
    [
        click.option("--fast-decode", is_flag=True, help="Decode big JPEGs at reduced scale (faster; pixels differ slightly)."),
        click.option("--timeout", "fetch_timeout", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True, help="http(s) inputs: seconds to connect, and for the whole download."),
    ]
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
stream_options = _options(
    [
        click.option("--hidden", "include_hidden", is_flag=True, help="Include hidden files and folders."),
        click.option("-b", "--batch-size", type=click.IntRange(1, 1024), default=None, help="Images per model call (default: 32 on a CPU, 256 on a GPU)."),
        click.option("--workers", type=click.IntRange(0, 64), default=0, help="Decode threads (0 = one per core, at least 2)."),
        fast_decode_option,
        quiet_option,
    ]
)
input_options = _options(
    [
        click.argument("inputs", nargs=-1, required=True, metavar="PATHS…", type=click.Path()),
        click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders."),
        click.option("-0", "--null", is_flag=True, help="Paths on stdin (-) are NUL-separated, as find -print0 writes them."),
        stream_options,
    ]
)
engine_options = _options(
    [
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True, help="ray: run on a Ray cluster, decode tasks feeding a pool of model actors (needs the ray extra)."),
        click.option("--ray-address", metavar="ADDRESS", help="With --engine ray: the cluster to join, HOST:PORT or auto (this node's cluster). Default: $RAY_ADDRESS, else a new local Ray on this machine. A token-auth cluster needs RAY_AUTH_MODE=token and its token."),
        click.option("--ray-actors", type=click.IntRange(1, 100000), help="With --engine ray: model actors (default: fit to the cluster's CPUs, one per GPU)."),
    ]
)
head_option = click.option("--head", metavar="FILE.npz", type=click.Path(dir_okay=False), help="A head from 'train': your classes instead of ImageNet's (on every runtime and precision).")


def _model_request(kwargs: dict, **fixed) -> ModelRequest:
    """The ModelRequest fields out of a command's parsed options (the rest stay in kwargs)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(ModelRequest)}
    request = ModelRequest(**{name: kwargs.pop(name) for name in list(kwargs) if name in names}, **fixed)
    problem = conflicts(request)
    if problem:
        raise click.UsageError(problem)
    return request


def _input_options(kwargs: dict) -> InputOptions:
    """The InputOptions fields out of a command's parsed options; Ray's flags only with ray."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(InputOptions)}
    inputs = InputOptions(**{name: kwargs.pop(name) for name in list(kwargs) if name in names})
    if inputs.engine != "ray":
        for flag, value in (("--ray-address", inputs.ray_address), ("--ray-actors", inputs.ray_actors)):
            if value is not None:
                raise click.UsageError(f"{flag} is for --engine ray. Received: --engine {inputs.engine}")
    return inputs


def _call(command, *args, **kwargs) -> None:
    """Run a command; a usage problem found while checking is exit 2, every other user-facing
    failure one stderr line (exit 1), never a traceback."""
    from .console import stderr_line
    from .errors import UsageProblem, UserError
    from .weights import WeightsError

    try:
        code = command(*args, **kwargs)
    except UsageProblem as problem:
        raise click.UsageError(str(problem)) from None
    except (UserError, WeightsError) as error:
        stderr_line(f"error: {error}")
        code = getattr(error, "exit_code", 1)
    except OSError as error:  # the disk or the system said no while writing a result
        where = f"{error.filename}: " if error.filename else ""
        stderr_line(f"error: {where}{error.strerror or error}")
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
    resnet-classify -r photos/ -o out.jsonl    a whole folder, one JSON line per image
    find . -name '*.jpg' | resnet-classify -   paths from stdin
    resnet-classify summary                    the network, layer by layer

    Options may stand before or after the command name.
    Exit status: 0 all classified, 1 some inputs failed, 2 usage error, 3 the Ray cluster
    cannot be reached, 130 interrupted (143 terminated).
    """
    from .output import mark_launch

    mark_launch()


@main.command()
@input_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@head_option
@click.option("-k", "--top-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Classes per image (all of them when there are fewer).")
@click.option("-f", "--format", type=click.Choice(FORMATS), default=None, help="table for people; json, jsonl, csv, parquet (with -o) for programs. Default: from -o's extension, else table.")
@click.option("-o", "--output", metavar="FILE|DIR/", type=click.Path(), help="Write records to FILE (or to part-N files in DIR/) instead of stdout.")
@click.option("--resume", is_flag=True, help="With --output (jsonl/csv): skip inputs already there, append the rest.")
@engine_options
@click.option("--progress", type=click.Choice(("auto", "bar", "log", "none")), default="auto", show_default=True, help="auto: a bar on a terminal, else a line every 10 s on stderr (done/total, rate, ETA).")
def classify(**kwargs):
    """Classify images (the default command): files, folders, or - for paths on stdin."""
    from .output import output_format, output_location

    request = _model_request(kwargs)
    inputs = _input_options(kwargs)
    if kwargs["resume"] and not kwargs["output"]:
        raise click.UsageError("--resume needs --output FILE (the file to continue).")
    try:
        kwargs["output"] = output_location(kwargs["output"])
        kwargs["format"] = output_format(kwargs["format"], kwargs["output"], kwargs["resume"])
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    from . import commands

    _call(commands.classify, request, inputs, OutputOptions(**kwargs))


@main.command()
@numerics_options
def summary(**kwargs):
    """Print the model summary (layers, shapes, 25,636,712 parameters)."""
    from . import commands

    _call(commands.summary, _model_request(kwargs))


@main.command()
@input_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@head_option
@click.option("--labels", metavar="CSV", type=click.Path(dir_okay=False), help="file,class_index or file,wnid (with --head: file,class name). Default: wnid folders (n01440764/…) or wnid file-name prefixes (n01440764_….JPEG); with --head, folders named like its classes.")
@click.option("-f", "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@engine_options
def evaluate(**kwargs):
    """Top-1 / top-5 accuracy on labeled images (folders are searched recursively)."""
    from . import commands

    request, inputs = _model_request(kwargs), _input_options(kwargs)
    _call(commands.evaluate, request, inputs, **kwargs)


def _suffix(*suffixes: str):
    def check(ctx, param, value):
        if value is not None and not value.endswith(suffixes):
            raise click.BadParameter(f"must end in {' or '.join(suffixes)}. Received: {value}")
        return value

    return check


@main.command()
@input_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@click.option("-o", "--output", required=True, metavar="FILE", type=click.Path(dir_okay=False), callback=_suffix(".npz", ".npy"), help="features.npz (features + paths), or features.npy with features.txt of paths.")
@click.option("--normalize", is_flag=True, help="L2-normalise each vector.")
@engine_options
def embed(**kwargs):
    """2048-d pooled ResNet50 features of images, for search and clustering."""
    from . import commands

    request, inputs = _model_request(kwargs), _input_options(kwargs)
    _call(commands.embed, request, inputs, **kwargs)


@main.command()
@click.argument("image", metavar="IMAGE", type=click.Path())
@decode_options
@weights_options
@numerics_options
@device_option
@click.option("-o", "--output", required=True, metavar="FILE.png", type=click.Path(dir_okay=False), help="Heat-map blended over the photo.")
@click.option("--class", "target_class", metavar="N|WNID|LABEL", help="Class to explain (default: the top-1).")
@click.option("--raw", metavar="FILE.npy", type=click.Path(dir_okay=False), help="Also save the bare 7×7 map (values in [0, 1]).")
@quiet_option
def explain(**kwargs):
    """Grad-CAM heat-map on res5c: where the network saw the class (Keras runtime)."""
    from . import commands

    _call(commands.explain, _model_request(kwargs, runtime="keras"), **kwargs)


@main.command()
@weights_options
@numerics_options
@click.option("--precision", type=click.Choice(("fp32", "int8")), default="fp32", show_default=True, help="int8: statically quantized, calibrated on --calibration images.")
@click.option("--calibration", metavar="DIR", type=click.Path(file_okay=False), help="With --precision int8: images to calibrate on (default: the bundled sample images).")
@head_option
@click.option("-o", "--output", required=True, metavar="FILE.onnx", type=click.Path(dir_okay=False))
@quiet_option
def export(**kwargs):
    """Write the ONNX model (uint8 RGB in, probabilities out; --precision int8 for the quantized one)."""
    from . import commands

    _call(commands.export, _model_request(kwargs, runtime="onnx"), **kwargs)


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@stream_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@click.option("-o", "--output", required=True, metavar="FILE.npz", type=click.Path(dir_okay=False), callback=_suffix(".npz"), help="The head: weights, class names, and what its features were computed with.")
@click.option("--labels", metavar="CSV", type=click.Path(dir_okay=False), help="file,label rows instead of one sub-folder per class.")
@click.option("--val-fraction", type=click.FloatRange(0, 0.9), default=0.2, show_default=True, help="Share of each class held out to measure the head (0: none).")
@click.option("--augment", type=click.IntRange(0, 32), default=0, show_default=True, help="Random flips/crops per photo added to the training features (for few photos per class).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, the cross-validation folds and the augmentation.")
@click.option("-f", "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@engine_options
def train(directory, **kwargs):
    """Learn your own classes: a linear head on the pooled features of DIR/<class>/… photos."""
    from . import commands

    request = _model_request(kwargs)
    kwargs.update(inputs=(directory,), recursive=True)
    inputs = _input_options(kwargs)
    if kwargs["augment"] and inputs.engine == "ray":
        raise click.UsageError("--augment runs on the local engine. Received: --engine ray")
    _call(commands.train, request, inputs, **kwargs)


@main.command()
@click.argument("action", type=click.Choice(("list", "clear")), default="list")
@click.option("-f", "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def cache(action, fmt):
    """The model cache: list what it holds (size, weights md5, options, last use), or clear it."""
    from . import commands

    _call(commands.cache, clear=action == "clear", fmt=fmt)
