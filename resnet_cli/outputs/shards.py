"""A folder of shards: DIR/part-00000.jsonl, part-00001.jsonl, … (a new one every
SHARD_RECORDS records), for runs too big for one file."""

from __future__ import annotations

import os
import re

from ..records import Record
from ..storage import isdir, join, listdir, makedirs
from .sinks import Sink, file_sink

SHARD_RECORDS = 100_000  # records per shard file: ~50 MB of jsonl at top-5


def is_shard_folder(output: str) -> bool:
    """``-o DIR/`` (or an existing folder) means a folder of shards rather than one file."""
    return output.endswith(("/", os.sep)) or isdir(output)


def shard_files(folder: str, fmt: str) -> list[str]:
    names = sorted(n for n in listdir(folder) if re.fullmatch(rf"part-\d+\.{fmt}", n))
    return [join(folder, n) for n in names]


class ShardSink(Sink):
    """Records into DIR/part-00000.jsonl, part-00001.jsonl, … (a new shard every
    ``records_per_shard``); a resumed run starts a new shard after the existing ones."""

    def __init__(self, folder: str, fmt: str, records_per_shard: int = SHARD_RECORDS, report=None):
        makedirs(folder)
        self.folder, self.fmt, self.records_per_shard, self.report = folder, fmt, records_per_shard, report
        numbers = [int(os.path.basename(p)[5:].split(".")[0]) for p in shard_files(folder, fmt)]
        self.next_shard = max(numbers, default=-1) + 1
        self.shard: Sink | None = None
        self.count = 0

    def write(self, record: Record) -> None:
        if self.shard is None or self.count >= self.records_per_shard:
            self._next()
        self.shard.write(record)
        self.count += 1

    def _next(self) -> None:
        if self.shard is not None:
            self.shard.close()
        path = join(self.folder, f"part-{self.next_shard:05d}.{self.fmt}")
        self.shard = file_sink(self.fmt, path, report=self.report)
        self.next_shard += 1
        self.count = 0

    def close(self) -> None:
        if self.shard is not None:
            self.shard.close()
