"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

`timeout`, systemd, `docker stop` and job schedulers send SIGTERM; a closed terminal sends
SIGHUP. Python's default for both is to die on the spot, which skips every `finally` and
leaves temporary `.partial` files behind. Inside `stop_on_termination_signals()` they raise
TerminatedBySignal instead: a BaseException like KeyboardInterrupt, so `except Exception`
handlers let it pass and every cleanup on the way out runs (partial outputs are deleted).
The command then exits with the shell's status for the signal, 128 + its number (143, 129).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class TerminatedBySignal(BaseException):
    """A termination signal arrived; `exit_status` is what a shell reports for it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _raise_once(signum, frame) -> None:
    # Later signals are ignored so the cleanup the first one starts is not cut short.
    for other in TERMINATION_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise TerminatedBySignal(signum)


@contextlib.contextmanager
def stop_on_termination_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP raise TerminatedBySignal in the main thread for the block's duration
    (elsewhere, where Python cannot install handlers, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_once) for signum in TERMINATION_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
