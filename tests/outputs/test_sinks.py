"""outputs.sinks: every format writes any name the OS gives as text — one table row, valid
UTF-8 CSV — the way the JSON records escape it."""

import csv
import io
import os

from resnet_cli.outputs.sinks import CsvSink, JsonlSink, TableSink
from resnet_cli.records import Prediction, Record, path_from_text

ODD = ["line\nbreak.jpg", "tab\there.jpg", os.fsdecode(b"bad\xff.jpg"), 'quote".jpg', "plain name.jpg"]


def _write(sink_class, records):
    stream = io.StringIO()
    sink = sink_class(stream)
    for record in records:
        sink.write(record)
    return stream.getvalue()


def test_a_table_keeps_each_name_on_one_line():
    text = _write(TableSink, [Record(name, error="x") for name in ODD])
    assert text.splitlines() == [
        "line\\nbreak.jpg  error: x",
        "tab\\there.jpg  error: x",
        "bad\\udcff.jpg  error: x",
        'quote".jpg  error: x',
        "plain name.jpg  error: x",
    ]


def test_csv_names_are_valid_utf8_and_read_back_to_the_same_path():
    prediction = Prediction(1, 386, "n02504458", "African_elephant", 0.5)
    text = _write(CsvSink, [Record(name, predictions=[prediction]) for name in ODD])
    text.encode("utf-8")  # no lone surrogate left
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [path_from_text(row["path"]) for row in rows] == ODD
    jsonl = _write(JsonlSink, [Record(ODD[2], error="x")])
    assert '"bad\\udcff.jpg"' in jsonl  # the same escape as the JSON record's
