"""The Click pieces the commands share: the group that makes classify the default, the options
(one definition each), and the requests a command's parsed options become. Numpy-free, as the
CLI module is."""

from __future__ import annotations

import dataclasses

import click

from .model.spec import INTERPOLATIONS, MODEL_NAMES, POOL1_PADDINGS, RESIZES
from .request import (
    DEVICES,
    ENGINES,
    PRECISIONS,
    RUNTIMES,
    EngineOptions,
    InputOptions,
    ModelRequest,
    OutputOptions,
    conflicts,
)


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
            self._refuse_a_mistyped_command(args[0])
            args = self._with_command_first(list(args))
        return super().parse_args(ctx, args)

    def _refuse_a_mistyped_command(self, word: str) -> None:
        """``resnet-classify sumary``: a word spelled like a command, and no such file, is a
        usage error that names the command (a photo has a name with a dot or a folder)."""
        import difflib
        import os

        if word.startswith("-") or "." in word or "/" in word or os.path.exists(word):
            return
        close = difflib.get_close_matches(word, list(self.commands), n=1, cutoff=0.75)
        if close:
            raise click.UsageError(f"No such command or file {word!r}. Did you mean {close[0]!r}?")

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


model_option = click.option(
    "--model",
    type=click.Choice(MODEL_NAMES),
    default=None,
    help="The network, as keras.applications names it (default: a --head's own, else resnet50); "
    "'resnet-classify models' lists them.",
)
weights_options = _options(
    [
        model_option,
        click.option(
            "--weights",
            metavar="PATH",
            type=click.Path(),
            help="Weight file (.h5, the official layout of --model's). Default: $RESNET_CLI_WEIGHTS, then the "
            "Keras cache, then download.",
        ),
        click.option("--offline", is_flag=True, help="Never download the weights."),
    ]
)
numerics_options = _options(
    [
        click.option(
            "--pool1-padding",
            type=click.Choice(tuple(POOL1_PADDINGS)),
            default=None,
            help="Max-pool after conv1: same (Caffe: the classic ResNet50 file's), pad1 (keras.applications: the "
            "other files'), valid (walkthrough).",
        ),
        click.option(
            "--bn-epsilon",
            type=click.FloatRange(0, min_open=True),
            default=None,
            help="BatchNormalization epsilon, > 0 (default: the weights' own: 1e-5 for the classic ResNet50 file, "
            "else 1.001e-5).",
        ),
    ]
)
device_option = click.option(
    "--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="Where the model runs."
)
runtime_options = _options(
    [
        device_option,
        click.option(
            "--runtime",
            type=click.Choice(RUNTIMES),
            default="auto",
            show_default=True,
            help="auto = the fastest installed for the precision on this CPU, by its flags (openvino or onnx; "
            "README: Runtimes), else keras; on a GPU keras (int8: onnx).",
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            default="fp32",
            show_default=True,
            help="int8: statically quantized ONNX model (onnx or openvino runtime). bf16: OpenVINO's bf16 (or Keras "
            "mixed precision) where the CPU (AVX512-BF16/AMX) or a GPU computes in bf16, else fp32 with a warning.",
        ),
        click.option(
            "--calibration",
            metavar="DIR",
            type=click.Path(file_okay=False),
            help="With --precision int8: images to calibrate on (default: the bundled sample images).",
        ),
        click.option("--threads", type=click.IntRange(0, 256), default=0, help="Inference threads (0 = one per core)."),
    ]
)
decode_options = _options(
    [
        click.option(
            "--resize",
            type=click.Choice(RESIZES),
            default=None,
            help="stretch (the weights' own): squash to 224×224 as keras.utils.load_img; crop: shorter side 256, "
            "centre 224.",
        ),
        click.option(
            "--interpolation",
            type=click.Choice(INTERPOLATIONS),
            default=None,
            help="Resampling filter (default: the weights' own, nearest).",
        ),
    ]
)
fast_decode_option = _options(
    [
        click.option(
            "--fast-decode", is_flag=True, help="Decode big JPEGs at reduced scale (faster; pixels differ slightly)."
        ),
        click.option(
            "--timeout",
            "fetch_timeout",
            type=click.FloatRange(0, min_open=True),
            default=30.0,
            show_default=True,
            help="http(s) inputs: seconds to connect, and for the whole download.",
        ),
    ]
)


def html_file(ctx, param, value):
    if value is not None and not value.lower().endswith((".html", ".htm")):
        raise click.BadParameter(f"must end in .html. Received: {value}")
    return value


report_page_option = click.option(
    "--report",
    metavar="FILE.html",
    type=click.Path(dir_okay=False),
    callback=html_file,
    help="Also write a page to look at: accuracy per class, the confusions, the misclassified photos.",
)
report_format_option = click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help="table for people, json for programs.",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
stream_options = _options(
    [
        click.option("--hidden", "include_hidden", is_flag=True, help="Include hidden files and folders."),
        click.option(
            "-b",
            "--batch-size",
            type=click.IntRange(1, 1024),
            default=None,
            help="Images per model call (default: 32 on a CPU, 256 on a GPU).",
        ),
        click.option(
            "--workers", type=click.IntRange(0, 64), default=0, help="Decode threads (0 = one per core, at least 2)."
        ),
        fast_decode_option,
        quiet_option,
        click.option("-v", "--verbose", is_flag=True, help="Name each file a folder holds that is no image (skipped)."),
    ]
)
tree_inputs = [
    click.argument("inputs", nargs=-1, required=True, metavar="PATHS…", type=click.Path()),
    click.option(
        "-0", "--null", is_flag=True, help="Paths on stdin (-) are NUL-separated, as find -print0 writes them."
    ),
    click.option(
        "--image-column",
        metavar="NAME",
        help="Parquet inputs: the column of images — bytes, a Hugging Face Image struct, or paths/URLs (default: the "
        "first of those kinds).",
    ),
    click.option(
        "--key-column", metavar="NAME", help="Parquet inputs: the column that names each record (default: FILE#ROW)."
    ),
    stream_options,
]
tree_input_options = _options(tree_inputs)  # folders are searched recursively: no -r to offer
input_options = _options(
    [*tree_inputs, click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders.")]
)
engine_options = _options(
    [
        click.option(
            "--engine",
            type=click.Choice(ENGINES),
            default="local",
            show_default=True,
            help="ray: run on a Ray cluster, decode tasks feeding a pool of model actors (serve: Ray Serve "
            "replicas; needs the ray extra).",
        ),
        click.option(
            "--ray-address",
            metavar="ADDRESS",
            help="With --engine ray: the cluster to join, HOST:PORT or auto (this node's cluster). Default: "
            "$RAY_ADDRESS, else a new local Ray on this machine. A token-auth cluster needs "
            "RAY_AUTH_MODE=token and its token.",
        ),
        click.option(
            "--ray-actors",
            type=click.IntRange(1, 100000),
            help="With --engine ray: model actors (default: fit to the cluster's CPUs, one per GPU).",
        ),
    ]
)
head_option = click.option(
    "--head",
    metavar="FILE.npz",
    type=click.Path(exists=True, dir_okay=False),
    help="A head from 'train': your classes instead of ImageNet's (on every runtime and precision).",
)


# The requests' fields, each fed by the Click parameter of the same name (its ``dest``): the
# requests are built from these lists, and a field without its option (or an option of the
# shared groups without its field) is an ImportError, so every test fails at once instead of
# the one command that would have failed when run.
MODEL_OPTIONS = (
    "model",
    "weights",
    "offline",
    "pool1_padding",
    "bn_epsilon",
    "resize",
    "interpolation",
    "fast_decode",
    "fetch_timeout",
    "runtime",
    "precision",
    "device",
    "threads",
    "calibration",
    "head",
)
INPUT_OPTIONS = (
    "inputs",
    "recursive",
    "null",
    "include_hidden",
    "quiet",
    "verbose",
    "progress",
    "image_column",
    "key_column",
)
ENGINE_OPTIONS = ("engine", "batch_size", "workers", "ray_address", "ray_actors")
OUTPUT_OPTIONS = ("format", "output", "resume", "retry_errors", "overwrite", "top_k")
SHARED_GROUPS = (
    weights_options,
    numerics_options,
    runtime_options,
    decode_options,
    input_options,
    engine_options,
    head_option,
)


def parameter_names(*decorators) -> set[str]:
    """The ``dest`` names of the Click parameters some option decorators add."""

    def probe():
        pass

    for decorator in decorators:
        probe = decorator(probe)
    return {param.name for param in getattr(probe, "__click_params__", [])}


def _check_the_tables() -> None:
    tables = ((MODEL_OPTIONS, ModelRequest), (INPUT_OPTIONS, InputOptions), (ENGINE_OPTIONS, EngineOptions))
    for names, request in (*tables, (OUTPUT_OPTIONS, OutputOptions)):
        fields = {field.name for field in dataclasses.fields(request)}
        if set(names) != fields:
            raise ImportError(f"{request.__name__}'s fields {sorted(fields)} != its options {sorted(names)}")
    stray = parameter_names(*SHARED_GROUPS) - {name for names, _ in tables for name in names}
    if stray:
        raise ImportError(f"options {sorted(stray)} feed no request field")


_check_the_tables()


def _taken(kwargs: dict, names: tuple[str, ...]) -> dict:
    return {name: kwargs.pop(name) for name in names if name in kwargs}


def model_request(kwargs: dict, **fixed) -> ModelRequest:
    """The ModelRequest out of a command's parsed options (the rest stay in kwargs)."""
    request = ModelRequest(**_taken(kwargs, MODEL_OPTIONS), **fixed)
    problem = conflicts(request)
    if problem:
        raise click.UsageError(problem)
    return request


def input_request(kwargs: dict) -> InputOptions:
    """The InputOptions out of a command's parsed options."""
    return InputOptions(**_taken(kwargs, INPUT_OPTIONS))


def engine_request(kwargs: dict) -> EngineOptions:
    """The EngineOptions out of a command's parsed options; Ray's flags only with ray."""
    asked = EngineOptions(**_taken(kwargs, ENGINE_OPTIONS))
    if asked.engine != "ray":
        for flag, value in (("--ray-address", asked.ray_address), ("--ray-actors", asked.ray_actors)):
            if value is not None:
                raise click.UsageError(f"{flag} is for --engine ray. Received: --engine {asked.engine}")
    return asked


def output_request(kwargs: dict) -> OutputOptions:
    return OutputOptions(**_taken(kwargs, OUTPUT_OPTIONS))


def suffix(*suffixes: str):
    def check(ctx, param, value):
        if value is not None and not value.endswith(suffixes):
            raise click.BadParameter(f"must end in {' or '.join(suffixes)}. Received: {value}")
        return value

    return check
