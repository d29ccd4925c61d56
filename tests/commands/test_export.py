"""The export command: a runnable model file that names its classes (ImageNet's or a head's)."""

import numpy as np
import pytest
from conftest import onnx_config, onnx_session


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_export_command_writes_a_runnable_model(classic_file, sample_arrays, tmp_path, precision):
    from click.testing import CliRunner

    from resnet_cli.cli import main

    out = tmp_path / f"resnet50-{precision}.onnx"
    result = CliRunner().invoke(
        main, ["export", "--weights", str(classic_file), "--precision", precision, "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    exported = _session_from(out).run(None, {"images": sample_arrays})[0]
    cached = onnx_session(classic_file, precision=precision).run(None, {"images": sample_arrays})[0]
    np.testing.assert_array_equal(exported, cached)
    assert exported.shape == (len(sample_arrays), 1000)


def _session_from(path):
    from resnet_cli.runtimes.onnx_runtime import open_session

    return open_session(path)


def test_export_with_a_head_carries_its_classes(trained_head, tinted, classic_file, tmp_path):
    """export --head: the backbone with fc1000 replaced, labels in the metadata; the file scores
    a photo as classify --head does."""
    import json

    import onnx
    from click.testing import CliRunner

    from resnet_cli.cli import main
    from resnet_cli.inputs.decode import decode
    from resnet_cli.runtimes.onnx_runtime import open_session

    head, report = trained_head
    out = tmp_path / "tints.onnx"
    result = CliRunner().invoke(main, ["export", "--head", str(head), "--weights", str(classic_file), "-o", str(out)])
    assert result.exit_code == 0 and "output probabilities [N, 4]" in result.stderr, result.stderr
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert json.loads(meta["labels"]) == report["classes"] and "wnids" not in meta
    photo = sorted((tinted / "test" / "red").glob("*.jpg"))[0]
    scores = open_session(out).run(None, {"images": decode(str(photo))[None]})[0][0]
    classified = CliRunner().invoke(
        main,
        ["classify", "--head", str(head), "--weights", str(classic_file), "-f", "json", "-k", "4", "-q", str(photo)],
    )
    (record,) = json.loads(classified.stdout)
    for p in record["predictions"]:
        assert scores[p["index"]] == pytest.approx(p["score"], abs=1e-6)


def test_exported_imagenet_model_names_its_classes(classic_file):
    import json

    import onnx

    from resnet_cli.model.imagenet import class_index
    from resnet_cli.runtimes.model_cache import ensure_onnx_model

    meta = {
        p.key: p.value
        for p in onnx.load(
            str(ensure_onnx_model(onnx_config(classic_file), quiet=True)), load_external_data=False
        ).metadata_props
    }
    assert (
        json.loads(meta["wnids"]) == [w for w, _ in class_index()]
        and json.loads(meta["labels"])[386] == "African_elephant"
    )
    assert meta["resize"] == "stretch" and meta["interpolation"] == "nearest"


@pytest.mark.keras
def test_export_resnet50v2_int8_names_its_model_and_keeps_its_classes(family, judged_photos, tmp_path):
    """export --model resnet50v2 --precision int8: the file says its model and preprocessing,
    takes uint8 RGB and gives keras.applications' classes (int8's top-1 within fp32's top 5)."""
    from click.testing import CliRunner

    from resnet_cli.cli import main

    member = family("resnet50v2")
    out = tmp_path / "resnet50v2-int8.onnx"
    args = ["export", "--model", "resnet50v2", "--weights", str(member.file), "--precision", "int8", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    session = _session_from(out)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["model"] == "resnet50v2" and meta["preprocessing"].startswith("tf: ")
    assert "scaling to [-1, 1] is in the graph" in meta["input"]
    got = session.run(None, {"images": judged_photos})[0]
    expected = member.probabilities(judged_photos)
    assert got.shape == expected.shape and any(n.op_type == "QuantizeLinear" for n in _nodes(out))
    in_top5 = np.mean([a in np.argsort(-e)[:5] for a, e in zip(got.argmax(1), expected)])
    assert in_top5 >= 0.9


def _nodes(path):
    import onnx

    return onnx.load(str(path)).graph.node
