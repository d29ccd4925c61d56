"""inputs.discover: order, repeats, hidden files, link loops; paths from stdin, NUL-separated, any bytes."""

from conftest import SAMPLES

from resnet_cli.inputs.discover import discover


def test_discover_order_dedup_hidden_and_loops(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.jpg").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "b" / "loop").symlink_to(tmp_path)  # a folder loop
    flat = [s.path for s in discover([str(tmp_path)])]
    assert flat == [str(tmp_path / "a.jpg")]
    deep = [s.path for s in discover([str(tmp_path), str(tmp_path / "a.jpg")], recursive=True)]
    assert deep == [str(tmp_path / "b" / "2.jpg"), str(tmp_path / "a.jpg")]  # the named file once, where it was named
    twice = [
        s.path
        for s in discover(
            [
                str(tmp_path / "a.jpg"),
                str(tmp_path / "b"),
                str(tmp_path / "." / "a.jpg"),
                str(tmp_path / "b" / "loop" / "b"),
            ],
            recursive=True,
        )
    ]
    assert twice == [
        str(tmp_path / "a.jpg"),
        str(tmp_path / "b" / "2.jpg"),
    ]  # a file and a folder named twice (by other spellings)
    hidden = [s.path for s in discover([str(tmp_path)], include_hidden=True)]
    assert str(tmp_path / ".hidden.jpg") in hidden
    assert all(not s.explicit for s in discover([str(tmp_path)]))
    assert [s.explicit for s in discover([str(tmp_path / "a.jpg")])] == [True]


def test_discover_reads_paths_from_stdin(tmp_path):
    import io

    (tmp_path / "x.jpg").write_bytes(b"x")
    stream = io.StringIO(f"{tmp_path / 'x.jpg'}\n\n{tmp_path / 'x.jpg'}\n{tmp_path / 'missing.jpg'}\n")
    # Taken as given, as xargs takes them (a set of every path would grow with the input count).
    assert [s.path for s in discover(["-"], stdin=stream)] == [
        str(tmp_path / "x.jpg"),
        str(tmp_path / "x.jpg"),
        str(tmp_path / "missing.jpg"),
    ]


def test_nul_separated_paths_and_any_bytes_from_stdin(classic_file, tmp_path):
    """find -print0 | resnet-classify -0 -: names with newlines and non-UTF-8 bytes are
    classified; a NUL in newline-separated input is an error record, not a crash."""
    import json
    import os
    import subprocess
    import sys

    odd = sorted([os.fsencode(tmp_path) + b"/new\nline.jpg", os.fsencode(tmp_path) + b"/latin-\xe9.jpg"])
    for name in odd:
        with open(name, "wb") as handle:
            handle.write((SAMPLES / "cat.jpg").read_bytes())
    listed = subprocess.run(
        ["find", str(tmp_path), "-name", "*.jpg", "-print0"], capture_output=True, check=True
    ).stdout
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "-f", "jsonl", "-q", "-k", "1"]
    done = subprocess.run([*command, "-0", "-"], input=listed, capture_output=True)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(os.fsencode(r["path"]) for r in records) == odd and all(r["predictions"] for r in records)
    done = subprocess.run([*command, "-"], input=b"a\0b.jpg\n", capture_output=True)
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert "NUL byte" in record["error"] and "-0" in record["error"]


def test_image_bytes_on_stdin_are_one_image_and_a_path_list_stays_a_list(classic_file):
    """`cat photo | resnet-classify -` and `- < photo`: one record, path "-", the file's own
    predictions; a list of paths on stdin is still read as paths."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "-q", "-f", "jsonl", "-"]
    photo = SAMPLES / "cat.jpg"
    named = subprocess.run([*command[:-1], str(photo)], capture_output=True, text=True, check=True).stdout
    piped = subprocess.run(command, input=photo.read_bytes(), capture_output=True, check=True)
    with open(photo, "rb") as handle:
        redirected = subprocess.run(command, stdin=handle, capture_output=True, check=True)
    for result in (piped, redirected):
        (record,) = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert record == {**json.loads(named), "path": "-"} and result.stderr == b""
    listed = subprocess.run(command, input=f"{photo}\n{SAMPLES / 'elephant.jpg'}\n", capture_output=True, text=True)
    assert [json.loads(line)["path"] for line in listed.stdout.splitlines()] == [
        str(photo),
        str(SAMPLES / "elephant.jpg"),
    ]
