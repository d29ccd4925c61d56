"""The real CLI through Click's CliRunner (stdout and stderr apart) and a real subprocess."""

import json
import subprocess
import sys

import pytest
from conftest import SAMPLES, invoke

ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


def test_help_and_version_do_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from resnet_cli.cli import main;"
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output;"
        "r2 = CliRunner().invoke(main, ['--version']); assert r2.exit_code == 0;"
        "heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'numpy') if m in sys.modules];"
        "print(r2.stdout.strip()); print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "resnet-classify, version" in out
    assert out.strip().endswith("[]")


def test_no_input_is_a_usage_error():
    result = invoke("classify")
    assert result.exit_code == 2 and "Missing argument 'PATHS…'" in result.stderr and result.stdout == ""


@pytest.mark.keras
def test_summary_prints_the_walkthrough_summary(keras):
    result = invoke("summary")
    assert result.exit_code == 0
    for name in ("conv1", "bn_conv1", "res2a_branch2a", "res2a_branch1", "res5c_branch2c", "avg_pool", "fc1000"):
        assert name in result.stdout
    assert "25,636,712" in result.stdout


def test_user_errors_are_one_line(classic_file, tmp_path):
    cases = [
        ("--runtime", "onnx", "--precision", "int8", "--calibration", tmp_path / "nowhere", ELEPHANT),
        ("--weights", tmp_path, ELEPHANT),
    ]
    for args in cases:
        result = invoke("--weights", classic_file, *args)
        assert result.exit_code == 1, (args, result.stderr)
        assert result.stderr.startswith("resnet-classify: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize(
    "args, says",
    [
        (("--offline", "--bn-epsilon", "0", CAT), "'--bn-epsilon': 0.0 is not in the range x>0"),
        (("--offline", "--bn-epsilon", "-1", CAT), "'--bn-epsilon': -1.0 is not in the range x>0"),
        (("--offline", "--resume", CAT), "--resume needs --output"),
        (("--offline", "--precision", "int8", "--runtime", "keras", CAT), "Received: --runtime keras"),
        (("--offline", "--precision", "bf16", "--runtime", "onnx", CAT), "Received: --runtime onnx"),
        (("--offline", "--calibration", SAMPLES, CAT), "--calibration is for --precision int8"),
        (("--offline", "-k", "0", CAT), "0 is not in the range 1<=x<=1000"),
        (
            ("embed", "--offline", "-o", "features.txt", CAT),
            "must end in .parquet or .jsonl or / or .npz or .npy. Received: features.txt",
        ),
        (("--offline", "--ray-actors", "3", CAT), "--ray-actors is for --engine ray"),
        (("--offline", "--ray-address", "nonsense", CAT), "--ray-address is for --engine ray"),
        (("--offline", "-f", "json", "-o", "shards/", CAT), "a folder of shards needs --format jsonl, csv, parquet"),
        (("-q", "summary"), "No such option '-q'"),
        (("--offline", "--overwrite", CAT), "--overwrite needs --output"),
        (("--offline", "-o", "o.jsonl", "--resume", "--overwrite", CAT), "choose one"),
        (("evaluate", "--offline", "-r", CAT), "No such option '-r'"),
    ],
)
def test_usage_errors_exit_2_before_any_work(args, says, tmp_path, monkeypatch):
    """--offline with no weights anywhere: had the run looked for weights, it would exit 1."""
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert "Usage: resnet-classify" in result.stderr and says in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder made


@pytest.mark.keras
def test_option_before_the_subcommand_goes_to_it(classic_file, tmp_path):
    png = tmp_path / "h.png"
    result = invoke("--weights", classic_file, "explain", CAT, "-o", png)
    assert result.exit_code == 0, result.stderr
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"  # a heat-map, never a table of text
    assert result.stdout == ""


def test_implicit_classify_never_swallows_a_subcommand(classic_file, tmp_path):
    """`-o summary` makes "summary" the value of -o, not a photo; a subcommand name after
    options is the subcommand."""
    result = invoke("--weights", classic_file, "-f", "jsonl", "-o", tmp_path / "summary", CAT)
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "summary").read_text())["path"] == CAT


def test_group_help_shows_the_classify_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--top-k", "--format", "--output", "--resume", "--precision [fp32|int8|bf16]", "--engine"):
        assert option in result.stdout


def test_shell_completion_offers_files_for_the_implicit_classify(tmp_path):
    import os

    env = dict(
        os.environ, _RESNET_CLASSIFY_COMPLETE="bash_complete", COMP_WORDS="resnet-classify mixed/m", COMP_CWORD="1"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from resnet_cli.cli import main; main(prog_name='resnet-classify')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "file,mixed/m" in done.stdout.splitlines(), done.stdout + done.stderr
    env.update(COMP_WORDS="resnet-classify ex", COMP_CWORD="1")
    done = subprocess.run(
        [sys.executable, "-c", "from resnet_cli.cli import main; main(prog_name='resnet-classify')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert {"plain,explain", "plain,export"} <= set(done.stdout.splitlines())


def test_weights_messages_never_advise_deleting_a_users_file(tmp_path):
    photo = invoke("--weights", CAT, CAT)
    assert (
        photo.exit_code == 1
        and "delete" not in photo.stderr
        and "pass the official file with --weights" in photo.stderr
    )
    folder = invoke("--weights", tmp_path, CAT)
    assert folder.exit_code == 1 and f"{tmp_path}: is a folder, not a weights file" in folder.stderr


def test_explain_suggests_classes(classic_file, tmp_path):
    result = invoke("explain", "--weights", classic_file, CAT, "-o", tmp_path / "h.png", "--class", "elephant")
    assert result.exit_code == 1 and "African_elephant" in result.stderr and "Received: 'elephant'" in result.stderr
    assert not (tmp_path / "h.png").exists()


def test_a_mistyped_command_gets_did_you_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("sumary")
    assert result.exit_code == 2 and "Did you mean 'summary'?" in result.stderr and result.stdout == ""
    (tmp_path / "sumary").write_bytes(b"")  # a file of that name is an input, not a typo
    assert invoke("--offline", "sumary").exit_code == 1


@pytest.mark.keras
def test_summary_of_another_member(keras):
    result = invoke("summary", "--model", "resnet101")
    assert result.exit_code == 0, result.stderr
    assert "conv4_block23_" in result.stdout and "44,707,176" in result.stdout


@pytest.mark.keras
def test_models_lists_the_family_and_what_is_here(family):
    import shutil

    from resnet_cli.model.weights import keras_cache_dir

    listed = json.loads(invoke("models", "-f", "json").stdout)
    assert [row["model"] for row in listed] == [
        "resnet50",
        "resnet101",
        "resnet152",
        "resnet50v2",
        "resnet101v2",
        "resnet152v2",
    ]
    row = {r["model"]: r for r in listed}["resnet152v2"]
    assert (row["depth"], row["parameters"], row["preprocessing"], row["md5"]) == (
        152,
        60_380_648,
        "tf",
        "a49b44d1979771252814e80f8ec446f9",
    )
    member = family("resnet50v2")
    keras_cache_dir().mkdir(parents=True, exist_ok=True)
    target = keras_cache_dir() / member.file.name
    shutil.copy(member.file, target)
    try:
        here = {r["model"]: r["on_this_machine"] for r in json.loads(invoke("models", "-f", "json").stdout)}
        table = invoke("models").stdout
    finally:
        target.unlink()
    assert here["resnet50v2"] == str(target) and here["resnet101"] is None
    assert "resnet50v2" in table and "76.0" in table


@pytest.mark.keras
def test_a_file_of_another_member_is_named(classic_file, family):
    result = invoke("--model", "resnet101", "--weights", classic_file, "-q", SAMPLES / "cat.jpg")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "It holds resnet50 weights: pass --model resnet50." in result.stderr
    member = family("resnet101")
    result = invoke("--model", "resnet152", "--weights", member.file, "-q", SAMPLES / "cat.jpg")
    assert result.exit_code == 1 and "It holds resnet101 weights: pass --model resnet101." in result.stderr


def test_a_missing_members_weights_name_its_file():
    result = invoke("--model", "resnet152", "--offline", SAMPLES / "cat.jpg")
    assert result.exit_code == 1
    assert "the ResNet152 ImageNet weights are not on this machine" in result.stderr
    assert "resnet152_weights_tf_dim_ordering_tf_kernels.h5 (md5 100835be76be38e30d865e96f2aaae62" in result.stderr


def test_an_unknown_model_is_a_usage_error_listing_the_family():
    result = invoke("--model", "resnet18", SAMPLES / "cat.jpg")
    assert result.exit_code == 2 and "'resnet101v2'" in result.stderr and "'resnet152'" in result.stderr


@pytest.mark.parametrize("name", ["classify", "evaluate", "embed", "train", "explain", "export", "summary"])
def test_each_option_reaches_its_request_or_its_commands_keyword(name):
    """The shared options feed the requests (checked at import by cli_options); the rest of a
    command's options must be keywords of its function, by name."""
    import importlib
    import inspect

    from resnet_cli import cli_options
    from resnet_cli.cli import main

    requests = set(cli_options.MODEL_OPTIONS)
    objects = {"request"}  # the requests themselves
    if name in ("classify", "evaluate", "embed", "train"):
        requests |= {*cli_options.INPUT_OPTIONS, *cli_options.ENGINE_OPTIONS}
        objects |= {"inputs", "asked"}
    if name == "classify":
        requests |= set(cli_options.OUTPUT_OPTIONS)
        objects.add("output")
    own = {param.name for param in main.commands[name].params} - requests - {"directory"}  # train's: its inputs
    function = getattr(importlib.import_module(f"resnet_cli.commands.{name}"), name)
    assert own == set(inspect.signature(function).parameters) - objects


def test_an_option_and_a_field_that_disagree_stop_the_import(monkeypatch):
    from resnet_cli import cli_options

    cli_options._check_the_tables()
    monkeypatch.setattr(cli_options, "MODEL_OPTIONS", cli_options.MODEL_OPTIONS[:-1])  # a field without its option
    with pytest.raises(ImportError, match=r"ModelRequest's fields .* != its options"):
        cli_options._check_the_tables()
    monkeypatch.undo()
    monkeypatch.setattr(cli_options, "SHARED_GROUPS", (*cli_options.SHARED_GROUPS, cli_options.report_page_option))
    with pytest.raises(ImportError, match=r"options \['report'\] feed no request field"):
        cli_options._check_the_tables()


def test_serves_options_are_its_request_fields():
    """serve's own options (beyond the model's and the engine's) build its ServeOptions by name."""
    import dataclasses

    from resnet_cli import cli_options
    from resnet_cli.cli import main
    from resnet_cli.request import ServeOptions

    own = {param.name for param in main.commands["serve"].params} - set(cli_options.MODEL_OPTIONS)
    own -= {*cli_options.ENGINE_OPTIONS, "top_k"}
    fields = {field.name for field in dataclasses.fields(ServeOptions)}
    assert own == fields - {"max_body"} | {"max_body_mb"}
