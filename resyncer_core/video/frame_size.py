"""Frame sizes as (height, width), the order of numpy's frame.shape[:2]."""

from __future__ import annotations

from ..errors import ResyncerInputError


def as_frame_size(size: tuple[int, int], minimum: int = 1) -> tuple[int, int]:
    """Validated (height, width) of at least `minimum` pixels each."""
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ResyncerInputError(f"frame size {size!r} is not (height, width); pass two integers") from None
    if height < minimum or width < minimum:
        raise ResyncerInputError(f"frame size {size!r} is too small; give a (height, width) of at least {minimum} pixels each")
    return height, width
