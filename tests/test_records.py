"""records: the one schema every sink writes, and file names as text whatever bytes they hold."""

import json
import os

import pytest

from resnet_cli.records import Prediction, Record, path_display, path_from_text, path_text


def test_a_record_is_predictions_or_an_error_never_both():
    good = Record("a.jpg", [Prediction(1, 386, "n02504458", "African_elephant", 0.75)])
    bad = Record("b.jpg", error="not an image")
    assert json.loads(good.as_json()) == {
        "path": "a.jpg",
        "predictions": [{"rank": 1, "index": 386, "wnid": "n02504458", "label": "African_elephant", "score": 0.75}],
    }
    assert json.loads(bad.as_json()) == {"path": "b.jpg", "error": "not an image"}
    assert good.ok and not bad.ok


def test_undecodable_bytes_round_trip_through_json_and_text():
    name = os.fsdecode(b"caf\xe9 \xff.jpg")  # Latin-1 bytes: lone surrogates once decoded
    line = Record(name, error="x").as_json()
    line.encode("utf-8")  # valid UTF-8: any JSON reader takes it
    assert os.fsencode(json.loads(line)["path"]) == b"caf\xe9 \xff.jpg"
    assert path_text(name) == "caf\\udce9 \\udcff.jpg"
    assert path_from_text(path_text(name)) == name
    assert path_text("plain.jpg") == "plain.jpg"


def test_a_table_row_shows_control_characters_escaped_on_one_line():
    assert path_display("two\nlines.jpg") == "two\\nlines.jpg"
    assert path_display("tab\there.jpg") == "tab\\there.jpg"
    assert path_display("éléphant.jpg") == "éléphant.jpg"
    assert "\n" not in path_display(os.fsdecode(b"a\n\xff.jpg"))


@pytest.mark.parametrize(
    "name, shown",
    [
        ("\u202eevil\u202c.jpg", "\\u202eevil\\u202c.jpg"),  # a right-to-left override: would read "gpj.live"
        ("a\u200bb.jpg", "a\\u200bb.jpg"),  # zero-width space
        ("a\nb.jpg", "a\\nb.jpg"),
        ("x\udcff.jpg", "x\\udcff.jpg"),  # an undecodable byte
        ("plain name.jpg", "plain name.jpg"),
    ],
)
def test_a_name_shows_as_the_characters_it_holds(name, shown):
    from resnet_cli.records import path_display

    assert path_display(name) == shown


def test_an_override_in_a_file_name_is_escaped_in_the_table_the_page_and_the_error_line(classic_file, tmp_path):
    from conftest import SAMPLES, invoke

    photo, broken = tmp_path / "\u202eevil\u202c.jpg", tmp_path / "\u202ebad\u202c.jpg"
    photo.write_bytes((SAMPLES / "cat.jpg").read_bytes())
    broken.write_bytes(b"not an image")
    table = invoke("--weights", classic_file, "-f", "table", photo, broken)
    page = invoke("--weights", classic_file, "-f", "html", photo, broken)
    for result in (table, page):
        assert result.exit_code == 1 and "\u202e" not in result.stdout + result.stderr
    assert "\\u202eevil\\u202c.jpg" in table.stdout and "\\u202eevil\\u202c.jpg" in page.stdout
    assert "error: " + str(tmp_path) + "/\\u202ebad\\u202c.jpg: " in table.stderr
