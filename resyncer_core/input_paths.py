"""Input paths checked up front: a one-line error that says what the path is when it is not
the file a command needs (missing, or a folder), and what to give instead."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ResyncerInputError


def existing_file(path: str | os.PathLike, what: str, if_missing: str = "check the path",
                  if_folder: str = "give one file from it", error: type[ResyncerInputError] = ResyncerInputError) -> Path:
    """`path` as a Path when it is a file; else `error` naming it as `what` ("video file",
    "checkpoint", …) with the advice for a missing path or for a folder."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file; {if_folder}")
    raise error(f"{what} {path} does not exist; {if_missing}")
