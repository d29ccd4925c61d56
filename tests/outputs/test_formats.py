"""outputs.formats: one row per format; what a format's own writer writes, the table
recognises and (where it resumes) reads back."""

import pytest

from resnet_cli.outputs import formats
from resnet_cli.outputs.sinks import file_sink
from resnet_cli.records import Prediction, Record

RECORDS = [
    Record("a.jpg", [Prediction(1, 386, "n02504458", "African_elephant", 0.8)]),
    Record("b.jpg", error="truncated image data"),
]


def test_the_cli_offers_the_formats_of_the_table():
    from resnet_cli.request import FORMATS

    assert FORMATS == formats.NAMES
    assert formats.RESUMABLE == ("jsonl", "csv", "parquet") and "html" in formats.SHARDABLE


@pytest.mark.parametrize("name", formats.NAMES)
def test_each_format_written_is_recognised_and_read_back(tmp_path, name):
    row = formats.BY_NAME[name]
    path = tmp_path / f"out{row.suffixes[0] if row.suffixes else '.txt'}"
    assert formats.by_suffix(str(path)) == name or not row.suffixes
    sink = file_sink(name, str(path))
    for record in RECORDS:
        sink.write(record)
    sink.close()
    found = formats.by_first_bytes(path.read_bytes()[:64])
    assert found == name or (row.magic is None and found == "table")
    if row.resumes:
        assert list(row.paths()(str(path))) == ["a.jpg", "b.jpg"]
    else:
        assert row.reader is None


def test_suffixes_and_first_bytes():
    assert formats.by_suffix("x.NDJSON") == "jsonl" and formats.by_suffix("x.json") == "json"
    assert formats.by_suffix("x.txt") == "table" and formats.by_suffix("x") == "table"
    assert formats.by_first_bytes(b"  \n") is None and formats.by_first_bytes(b"hello") == "table"
    assert formats.needs("--resume", "json") == "--resume needs --format jsonl, csv, parquet. Received: --format json"
