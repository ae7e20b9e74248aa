"""Stand-in for comfy.utils: ProgressBar with ComfyUI's hook signature."""

from __future__ import annotations

PROGRESS_BAR_HOOK = None
UPDATES: list[tuple[int, int, object]] = []  # (value, total, node_id) of every update, for assertions


def set_progress_bar_global_hook(function) -> None:
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total = total
        self.current = 0
        self.hook = PROGRESS_BAR_HOOK
        self.node_id = node_id

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        value = min(value, self.total)
        self.current = value
        UPDATES.append((self.current, self.total, self.node_id))
        if self.hook is not None:
            self.hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value):
        self.update_absolute(self.current + value)
