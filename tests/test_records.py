"""records: the one schema every sink writes, and file names as text whatever bytes they hold."""

import json
import os

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
