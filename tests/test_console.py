"""console: records keep stdout while everything else the process prints goes to stderr."""


def test_records_only_stdout_sends_everything_else_to_stderr():
    """While Ray runs, whatever the process prints to fd 1 — Python prints and native writes
    alike — goes to stderr; the records' own stream still reaches stdout."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "from resnet_cli.console import records_only_stdout\n"
        "with records_only_stdout() as records:\n"
        "    print('python noise')\n"
        "    os.write(1, b'native noise\\n')\n"
        '    records.write(\'{"path": "a.jpg"}\\n\')\n'
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == '{"path": "a.jpg"}\nafter\n'
    assert "python noise" in done.stderr and "native noise" in done.stderr
