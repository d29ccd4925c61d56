"""The command line: parse, check, build the requests, call the command's module; nothing else.

Every bad option value or impossible combination is a usage error (exit 2, Click's message)
before any weights are looked for; every other user-facing failure is one stderr line.
Imports nothing heavy at module level, so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import sys

import click

from .cli_options import (
    DefaultGroup,
    decode_options,
    device_option,
    engine_options,
    engine_request,
    head_option,
    input_options,
    input_request,
    model_option,
    model_request,
    numerics_options,
    output_request,
    quiet_option,
    report_format_option,
    report_page_option,
    runtime_options,
    stream_options,
    suffix,
    tree_input_options,
    weights_options,
)
from .errors import ExitStatus
from .request import FORMATS, PROGRESS


def _call(command, *args, **kwargs) -> None:
    """Run a command; a usage problem found while checking is exit 2, every other user error
    one stderr line with its ExitStatus, never a traceback (anything else is a bug of ours and
    keeps its traceback)."""
    from .console import stderr_line
    from .errors import UsageProblem, UserError

    try:
        status = command(*args, **kwargs)
    except UsageProblem as problem:
        raise click.UsageError(str(problem)) from None
    except UserError as error:
        stderr_line(f"error: {error}")
        status = error.exit_status
    except KeyboardInterrupt:
        stderr_line("interrupted")
        status = ExitStatus.INTERRUPTED
    except BrokenPipeError:  # quietly, as coreutils do; stdout now goes nowhere, so exit flushes nothing
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = ExitStatus.BROKEN_PIPE
    sys.exit(int(status))


MAIN_HELP = (
    """Classify images with a pretrained ImageNet ResNet (ResNet50 unless --model says).

\b
resnet-classify photo.jpg                  top-5 classes of one photo
resnet-classify -r photos/ -o out.jsonl    a whole folder, one JSON line per image
find . -name '*.jpg' | resnet-classify -   paths from stdin
resnet-classify --model resnet152 photo.jpg  another ResNet (resnet-classify models)
resnet-classify summary                    the network, layer by layer

Options may stand before or after the command name.
Exit status: """
    + ", ".join(f"{int(status)} {status.meaning}" for status in ExitStatus)
    + "."
)


@click.group(cls=DefaultGroup, help=MAIN_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resnet-cli", prog_name="resnet-classify")
def main():
    """The launch is marked first: the summary and the progress count start-up in. ONNX
    Runtime's telemetry is off (no network unless weights are downloaded; its device-id line,
    in colour codes, would land on stderr where HOME is read-only)."""
    import os

    from .outputs.report import mark_launch

    mark_launch()
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


@main.command()
@input_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@head_option
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="Classes per image (all of them when there are fewer).",
)
@click.option(
    "-f",
    "--format",
    type=click.Choice(FORMATS),
    default=None,
    help="table for people, html (a page of thumbnails and labels) to look at; json, jsonl, csv, parquet (with -o) for "
    "programs. Default: from -o's extension, else table.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE|DIR/",
    type=click.Path(),
    help="Write records to FILE (or to part-N files in DIR/) instead of stdout; also s3://, gs://, hdfs://, file:// "
    "URIs.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="With --output (jsonl, csv, parquet; a file or DIR/): skip the inputs already there, add the rest; "
    "inputs whose record is an error run again (their old records replaced) unless --keep-errors.",
)
@click.option(
    "--retry-errors/--keep-errors",
    default=True,
    help="With --resume: run again the inputs whose record is an error (default), or count them as done.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="With --output: replace the records already there, once this run completes (without it, a run refuses an "
    "output that holds records).",
)
@engine_options
@click.option(
    "--progress",
    type=click.Choice(PROGRESS),
    default="auto",
    show_default=True,
    help="auto: a bar on a terminal, else a line every 10 s on stderr (done/total, rate, ETA).",
)
def classify(**kwargs):
    """Classify images (the default command): files, folders, URLs, URIs, or - for paths on stdin
    (or for one image's bytes: curl -s URL | resnet-classify -)."""
    request, inputs, asked, output = (
        model_request(kwargs),
        input_request(kwargs),
        engine_request(kwargs),
        output_request(kwargs),
    )
    for flag in ("resume", "overwrite"):
        if getattr(output, flag) and not output.output:
            raise click.UsageError(f"--{flag} needs --output FILE or DIR/ (the records to continue or replace).")
    if not output.retry_errors and not output.resume:
        raise click.UsageError("--keep-errors is for --resume (which errors count as done).")
    if output.resume and output.overwrite:
        raise click.UsageError("--resume adds to the records there, --overwrite replaces them: choose one.")
    from .commands.classify import classify as command

    _call(command, request, inputs, asked, output, **kwargs)


@main.command()
@model_option
@numerics_options
def summary(**kwargs):
    """Print the model summary (layers, shapes, parameters: 25,636,712 for ResNet50)."""
    from .commands.summary import summary as command

    _call(command, model_request(kwargs))


@main.command()
@tree_input_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@head_option
@click.option(
    "--labels",
    metavar="CSV",
    type=click.Path(dir_okay=False),
    help="file,class_index or file,wnid (with --head: file,class name). Default: wnid folders (n01440764/…) or "
    "wnid file-name prefixes (n01440764_….JPEG); with --head, folders named like its classes.",
)
@report_format_option
@report_page_option
@engine_options
def evaluate(**kwargs):
    """Top-1 / top-5 accuracy on labeled images (folders are searched recursively)."""
    request, inputs, asked = model_request(kwargs), input_request(kwargs), engine_request(kwargs)
    from .commands.evaluate import evaluate as command

    _call(command, request, inputs, asked, **kwargs)


@main.command()
@input_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE|DIR/",
    type=click.Path(),
    callback=suffix(".parquet", ".jsonl", "/", ".npz", ".npy"),
    help="vectors.parquet (path, model, vector; also a URI, or DIR/ for part-N.parquet shards) or .jsonl: written as "
    "they come, --resume continues them; features.npz (features + paths) or features.npy with features.txt of paths: "
    "written at the end.",
)
@click.option("--normalize", is_flag=True, help="L2-normalise each vector.")
@click.option("--resume", is_flag=True, help="With -o .parquet, .jsonl or DIR/: skip the inputs already there.")
@click.option("--overwrite", is_flag=True, help="With -o .parquet, .jsonl or DIR/: replace the vectors already there.")
@engine_options
def embed(**kwargs):
    """2048-d pooled ResNet features of images, for search and clustering."""
    request, inputs, asked = model_request(kwargs), input_request(kwargs), engine_request(kwargs)
    at_end = kwargs["output"].endswith((".npz", ".npy"))
    for flag in ("resume", "overwrite"):
        if kwargs[flag] and at_end:
            raise click.UsageError(f"--{flag} is for -o .parquet, .jsonl or DIR/ (written as they come)")
    if kwargs["resume"] and kwargs["overwrite"]:
        raise click.UsageError("--resume adds to the vectors there, --overwrite replaces them: choose one.")
    from .commands.embed import embed as command

    _call(command, request, inputs, asked, **kwargs)


@main.command()
@click.argument("image", metavar="IMAGE", type=click.Path())
@decode_options
@weights_options
@numerics_options
@device_option
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE.png",
    type=click.Path(dir_okay=False),
    help="Heat-map blended over the photo.",
)
@click.option("--class", "target_class", metavar="N|WNID|LABEL", help="Class to explain (default: the top-1).")
@click.option(
    "--raw", metavar="FILE.npy", type=click.Path(dir_okay=False), help="Also save the bare 7×7 map (values in [0, 1])."
)
@quiet_option
def explain(**kwargs):
    """Grad-CAM heat-map on the last stage: where the network saw the class (Keras runtime)."""
    from .commands.explain import explain as command

    _call(command, model_request(kwargs, runtime="keras"), **kwargs)


@main.command()
@weights_options
@numerics_options
@click.option(
    "--precision",
    type=click.Choice(("fp32", "int8")),
    default="fp32",
    show_default=True,
    help="int8: statically quantized, calibrated on --calibration images.",
)
@click.option(
    "--calibration",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="With --precision int8: images to calibrate on (default: the bundled sample images).",
)
@head_option
@click.option("-o", "--output", required=True, metavar="FILE.onnx", type=click.Path(dir_okay=False))
@quiet_option
def export(**kwargs):
    """Write the ONNX model (uint8 RGB in, probabilities out; --precision int8 for the quantized one)."""
    from .commands.export import export as command

    _call(command, model_request(kwargs, runtime="onnx"), **kwargs)


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@stream_options
@decode_options
@weights_options
@numerics_options
@runtime_options
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE.npz",
    type=click.Path(dir_okay=False),
    callback=suffix(".npz"),
    help="The head: weights, class names, and what its features were computed with.",
)
@click.option(
    "--labels",
    metavar="CSV",
    type=click.Path(dir_okay=False),
    help="file,label rows instead of one sub-folder per class.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 0.9),
    default=0.2,
    show_default=True,
    help="Share of each class held out to measure the head (0: none).",
)
@click.option(
    "--augment",
    type=click.IntRange(0, 32),
    default=0,
    show_default=True,
    help="Random flips/crops per photo added to the training features (for few photos per class).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the split, the cross-validation folds and the augmentation.",
)
@report_format_option
@report_page_option
@engine_options
def train(directory, **kwargs):
    """Learn your own classes: a linear head on the pooled features of DIR/<class>/… photos."""
    request = model_request(kwargs)
    kwargs.update(inputs=(directory,), recursive=True)
    inputs, asked = input_request(kwargs), engine_request(kwargs)
    if kwargs["augment"] and asked.engine == "ray":
        raise click.UsageError("--augment runs on the local engine. Received: --engine ray")
    from .commands.train import train as command

    _call(command, request, inputs, asked, **kwargs)


@main.command()
@report_format_option
def models(fmt):
    """The ResNets this tool runs: depth, parameters, cost, preprocessing, Keras' published
    accuracy, the weight file and whether it is on this machine."""
    from .commands.models import models as command

    _call(command, fmt=fmt)


@main.command()
@click.argument("action", type=click.Choice(("list", "clear")), default="list")
@report_format_option
def cache(action, fmt):
    """The model cache: list what it holds (size, weights md5, options, last use), or clear it."""
    from .commands.cache import cache as command

    _call(command, clear=action == "clear", fmt=fmt)


@main.command()
@weights_options
@numerics_options
@runtime_options
@decode_options
@head_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (any but loopback needs --token)."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option(
    "--token",
    envvar="RESNET_CLASSIFY_TOKEN",
    help="Clients must send Authorization: Bearer TOKEN (default: $RESNET_CLASSIFY_TOKEN; needed off loopback).",
)
@click.option(
    "-k", "--top-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Classes per image by default."
)
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(1, 1024),
    default=None,
    help="Most images per model call (default: 32 on a CPU, 256 on a GPU).",
)
@click.option("--workers", type=click.IntRange(0, 64), default=0, help="Decode threads (0 = one per core, at least 2).")
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(0, 1000),
    default=2.0,
    show_default=True,
    help="How long a batch waits for more requests once it has one.",
)
@click.option(
    "--max-queue", type=click.IntRange(1), default=256, show_default=True, help="Images waiting at most; then 503."
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(0, min_open=True),
    default=32.0,
    show_default=True,
    help="Largest request body; beyond it 413.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds for a whole request body; beyond it 408.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Concurrent connections; beyond them 503.",
)
@click.option(
    "--allow-urls", is_flag=True, help='Fetch the URLs and URIs a JSON body names ({"inputs": [...]}): an SSRF risk.'
)
@click.option(
    "--allow-dir",
    "allow_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False),
    help="A server folder whose files a JSON body may name (repeatable).",
)
@click.option("--access-log", is_flag=True, help="One line on stderr per request.")
@engine_options
def serve(**kwargs):
    """Keep the model loaded and classify over HTTP: POST /v1/classify (an image body or
    multipart files), with dynamic batching; GET /healthz, /readyz, /v1/models, /metrics.
    With --engine ray the model runs on Ray Serve replicas across the cluster."""
    from .request import ServeOptions
    from .server.app import is_loopback

    request = model_request(kwargs)
    asked = engine_request(kwargs)
    top_k = kwargs.pop("top_k")
    kwargs["max_body"] = int(kwargs.pop("max_body_mb") * 2**20)
    kwargs["allow_dirs"] = tuple(kwargs["allow_dirs"])
    options = ServeOptions(**kwargs)
    if not options.token and not is_loopback(options.host):
        raise click.UsageError(
            f"--host {options.host} is reachable from other machines: give a token (--token or RESNET_CLASSIFY_TOKEN)."
        )
    from .commands.serve import serve as command

    _call(command, request, asked, options, top_k)
