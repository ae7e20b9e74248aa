"""Output files that appear whole or not at all.

A result is written under a hidden temporary name in the destination folder (same file
system, so the final rename is atomic) and renamed onto the real name only when complete.
A crash, an exception or Ctrl-C therefore never leaves a truncated video or WAV that looks
like a finished one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from ..errors import ResyncerInputError


def check_output_location(path: str | os.PathLike) -> Path:
    """Refuses, without creating anything, an output path no file can be written at: a
    folder, a path under a file, or a folder this process may not write in."""
    path = Path(path)
    if path.is_dir():
        raise ResyncerInputError(f"output path {path} is a folder; give the path of a file to create")
    _check_writable_from(path.absolute().parent, path)
    return path


def check_output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuses, without creating anything, a folder to write into (a run, a dataset) that is a
    file, lies under a file, or may not be written in; `what` names it in the message."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ResyncerInputError(f"{what} {path} is a file, not a folder; give a folder to write into")
    _check_writable_from(path.absolute(), path)
    return path


def _check_writable_from(folder: Path, path: Path) -> None:
    """The nearest existing one of `folder` and its parents must be a folder this process may
    write in, for `path` to be created there."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ResyncerInputError(f"output {path} lies under the file {folder}; choose a path in a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ResyncerInputError(f"cannot write to {path} (no permission in {folder}); choose a writable folder")


class PartialFile:
    """A temporary file next to `path`; `commit()` renames it onto `path`, `discard()` deletes it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise ResyncerInputError(f"output path {self.path} is a folder; give the path of a file to create")
        self.temp_path = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}.partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Not tempfile.mkstemp: its 0600 mode would survive the rename and hide the result
            # from other users; 0666 minus the umask is what a plain open() would give.
            os.close(os.open(self.temp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except OSError as error:
            raise ResyncerInputError(f"cannot write to {self.path} ({error.strerror}); choose a writable folder") from None

    def commit(self) -> Path:
        os.replace(self.temp_path, self.path)
        return self.path

    def discard(self) -> None:
        self.temp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def partial_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write to; on normal exit it becomes `path`, on any
    exception (KeyboardInterrupt included) it is deleted."""
    partial = PartialFile(path)
    try:
        yield partial.temp_path
        partial.commit()
    except BaseException:
        partial.discard()
        raise
