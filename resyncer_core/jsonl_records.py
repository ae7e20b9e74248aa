"""JSONL record files that several processes append to: a dataset's index, a preprocess skip
list, a batch summary. Each record is one whole line written by one system call, so lines of
concurrent writers never interleave, and a reader skips a line torn by a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path


def append_jsonl(path: Path, record: dict) -> None:
    """Appends one line with a single write (O_APPEND), so concurrent writers never interleave."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file; a torn last line (a crash mid-write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
