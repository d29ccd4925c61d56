"""outputs.claim: one writer per output, across processes; a killed holder frees it."""

import os
import signal
import subprocess
import sys

import pytest

from resnet_cli.errors import UserError
from resnet_cli.outputs.claim import claim, lock_path

HOLD = """
import sys, time
from resnet_cli.outputs.claim import claim
held = claim(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_sits_beside_the_output(tmp_path):
    assert lock_path(str(tmp_path / "out.jsonl"), False) == str(tmp_path / ".out.jsonl.lock")
    assert lock_path(str(tmp_path / "shards"), True) == str(tmp_path / "shards" / ".lock")


def test_a_second_writer_is_refused_naming_the_first_until_it_dies(tmp_path):
    target = str(tmp_path / "out.jsonl")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, target], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"being written by another run \(PID {holder.pid}\)"):
            claim(target)
        os.kill(holder.pid, signal.SIGKILL)  # its lock dies with it
        holder.wait(timeout=10)
        mine = claim(target)
        assert open(mine.path).read().strip() == str(os.getpid())
        mine.release()
        assert not os.path.exists(mine.path)
    finally:
        holder.kill()


def test_released_twice_is_harmless(tmp_path):
    held = claim(str(tmp_path / "out.csv"))
    held.release()
    held.release()
    claim(str(tmp_path / "out.csv")).release()  # free again
