"""Head files: what they hold, how a run checks them against its weights and options, and
how the head replaces fc1000."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from resnet_cli.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="resnet-classify")


def _write_head(path, config, classes=("no", "yes")):
    """A head file for ``config``'s features, with random weights."""
    from resnet_cli.model.head import head_bytes

    rng = np.random.default_rng(0)
    path.write_bytes(
        head_bytes(rng.normal(0, 0.01, (2048, len(classes))), rng.normal(0, 1, len(classes)), classes, config, {})
    )
    return path


def _features_config(classic_file, **asked):
    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest

    return resolve(ModelRequest(weights=str(classic_file), **asked), include_top=False, pooling="avg")


def test_the_head_file_holds_weights_classes_and_what_it_was_trained_on(trained_head, classic_file):
    from resnet_cli.model.head import read_head
    from resnet_cli.storage import file_md5

    path, report = trained_head
    with np.load(path, allow_pickle=False) as data:
        assert data["kernel"].shape == (2048, 4) and data["bias"].shape == (4,)
        assert list(data["classes"]) == report["classes"]
        meta = json.loads(str(data["meta"]))
    assert meta["base_weights_md5"] == file_md5(classic_file)
    assert meta["trained_with"]["resize"] == "stretch" and meta["trained_with"]["pool1_padding"] == "same"
    assert meta["training"]["val_accuracy"] == report["val_accuracy"]
    head = read_head(str(path))
    assert head.classes == tuple(report["classes"]) and len(head.sha256) == 64


def test_a_run_takes_the_head_options_unless_asked_otherwise(classic_file, tmp_path):
    from resnet_cli.config import resolve
    from resnet_cli.errors import UserError
    from resnet_cli.request import ModelRequest

    head = _write_head(tmp_path / "crop.npz", _features_config(classic_file, resize="crop", interpolation="bicubic"))
    config = resolve(ModelRequest(weights=str(classic_file), head=str(head)))
    assert (config.resize, config.interpolation) == ("crop", "bicubic")
    assert config.labels == ((None, "no"), (None, "yes"))
    with pytest.raises(UserError, match="trained with --resize crop; this run asks for --resize stretch"):
        resolve(ModelRequest(weights=str(classic_file), head=str(head), resize="stretch"))


@pytest.mark.keras
def test_other_base_weights_are_one_line_naming_both_md5s(trained_head, keras_file, classic_file):
    from resnet_cli.storage import file_md5

    head, _ = trained_head
    result = invoke("classify", "--head", head, "--weights", keras_file, SAMPLES / "cat.jpg")
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert (
        file_md5(classic_file) in line
        and file_md5(keras_file) in line
        and line.startswith("resnet-classify: error: --head")
    )


@pytest.mark.parametrize("content", [b"", b"not a zip", "npz"])
def test_a_file_that_is_not_a_head_is_one_line(tmp_path, classic_file, content):
    path = tmp_path / "head.npz"
    if content == "npz":
        np.savez(path, features=np.zeros((2, 2048)))
    else:
        path.write_bytes(content)
    result = invoke("classify", "--head", path, "--weights", classic_file, SAMPLES / "cat.jpg")
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert "not a head file written by 'resnet-classify train'" in result.stderr
    missing = invoke("classify", "--head", tmp_path / "none.npz", SAMPLES / "cat.jpg")
    assert missing.exit_code == 2 and "'--head': File" in missing.stderr and "does not exist" in missing.stderr


@pytest.mark.keras
def test_with_head_replaces_fc1000_only(weights, classic_file, tmp_path):
    from resnet_cli.model.head import read_head, with_head

    head = read_head(str(_write_head(tmp_path / "h.npz", _features_config(classic_file))))
    replaced = with_head(weights, head)
    assert replaced["fc1000"][0].shape == (2048, 2)
    assert all(replaced[name] is weights[name] for name in weights if name != "fc1000")
    assert with_head(weights, None) is weights


def test_a_head_that_is_no_npz_is_our_own_line(tmp_path, classic_file):
    path = tmp_path / "notes.npz"
    path.write_text("just some text\n")
    result = invoke("classify", "--head", path, "--weights", classic_file, SAMPLES / "cat.jpg")
    assert result.exit_code == 1 and "allow_pickle" not in result.stderr
    assert result.stderr == (
        f"resnet-classify: error: --head {path}: not a head file written by 'resnet-classify train' "
        "(not an .npz archive).\n"
    )
