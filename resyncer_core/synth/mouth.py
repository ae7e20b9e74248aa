"""Opening the photo's mouth: a local vertical stretch of the lower face.

Rows from the lip line down are pulled down by a "jaw drop" that builds up across the lips,
carries the lower lip and chin with it and fades out along the neck; sideways it fades out
towards the cheeks. The band of rows that gets stretched (the gap between the teeth) is
darkened towards a mouth-cavity colour in proportion to how much it is stretched, so an open
mouth reads as an opening rather than as longer teeth. Only rows move, so sampling is a 1-D
linear interpolation per column: cheap enough to run on every frame.
"""

from __future__ import annotations

import numpy as np

from .portrait import FaceLayout

# In asset pixels (the 288x288 photo); scaled with the portrait.
_MAX_JAW_DROP = 13.0
# Rows across which the drop builds up. The output->source row map has slope
# 1 - drop·1.5/length (smoothstep's steepest slope is 1.5), which must stay positive or the
# lips would fold over: length > 1.5·max drop.
_STRETCH_ROWS = 22.0
_STRETCH_START_ABOVE_LIP_LINE = 6.0
_NECK_ROWS = 30.0  # below the (dropped) chin, the drop fades out over this many rows
_JAW_HALF_WIDTH = 45.0  # the drop reaches zero this far left and right of the mouth centre
_CAVITY_HALF_WIDTH_FRACTION = 0.85  # of the mouth half-width: the dark opening stops short of the corners
_CAVITY_RGB = np.array([62.0, 22.0, 26.0])
_MAX_STRETCH = _MAX_JAW_DROP * 1.5 / _STRETCH_ROWS
# The cavity is fully dark once the stretch reaches this fraction of its maximum, so a wide
# open mouth has a solid dark centre instead of smeared teeth.
_CAVITY_SATURATION = 0.6


class MouthWarp:
    """Warps the mouth region of a portrait that was scaled by `scale` from the asset."""

    def __init__(self, layout: FaceLayout, scale: float, portrait_shape: tuple[int, int]):
        height, width = portrait_shape
        center_x = layout.mouth_center[0] * scale
        stretch_start = (layout.lip_line_y - _STRETCH_START_ABOVE_LIP_LINE) * scale
        fall_start = (layout.chin[1] + _MAX_JAW_DROP) * scale
        fall_end = fall_start + _NECK_ROWS * scale
        half_width = _JAW_HALF_WIDTH * scale
        self.rows = np.arange(max(0, int(stretch_start)), min(height, int(np.ceil(fall_end)) + 1))
        self.columns = np.arange(max(0, int(center_x - half_width)), min(width, int(np.ceil(center_x + half_width)) + 1))
        self.max_drop = _MAX_JAW_DROP * scale
        self._last_row = height - 1

        rise, rise_slope = _smoothstep((self.rows - stretch_start) / (_STRETCH_ROWS * scale))
        fall, _ = _smoothstep((self.rows - fall_start) / (fall_end - fall_start))
        self._row_weight = rise * (1 - fall)
        # d(rise)/d(row); times the drop it is how much the row map stretches there (0 .. _MAX_STRETCH).
        self._row_stretch = rise_slope / (_STRETCH_ROWS * scale)
        mouth_offset = np.abs(self.columns - center_x)
        inner = layout.mouth_half_width * scale
        self._column_weight = 1 - _smoothstep((mouth_offset - inner) / (half_width - inner))[0]
        cavity_half_width = layout.mouth_half_width * _CAVITY_HALF_WIDTH_FRACTION * scale
        self._cavity_columns = np.clip(1 - (mouth_offset / cavity_half_width) ** 2, 0, 1)

    def apply(self, portrait: np.ndarray, opening: float) -> np.ndarray:
        """A copy of `portrait` (uint8 [H, W, C], C = RGB or RGBA) with the mouth `opening`
        (0 closed as photographed, 1 fully open)."""
        result = portrait.copy()
        if opening <= 0:
            return result
        drop = opening * self.max_drop
        source_rows = self.rows[:, None] - drop * self._row_weight[:, None] * self._column_weight[None, :]
        upper = np.clip(np.floor(source_rows).astype(np.int64), 0, self._last_row)
        lower = np.clip(upper + 1, 0, self._last_row)
        fraction = (source_rows - upper)[..., None]
        columns = self.columns[None, :]
        region = portrait[upper, columns] * (1 - fraction) + portrait[lower, columns] * fraction  # float64

        stretch = drop * self._row_stretch[:, None] * self._column_weight[None, :]
        cavity = (np.clip(stretch / (_MAX_STRETCH * _CAVITY_SATURATION), 0, 1) * self._cavity_columns[None, :])[..., None]
        region[..., :3] = region[..., :3] * (1 - cavity) + _CAVITY_RGB * cavity
        result[self.rows[0]:self.rows[-1] + 1, self.columns[0]:self.columns[-1] + 1] = np.clip(np.rint(region), 0, 255)
        return result


def _smoothstep(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x² - 2x³ on x clipped to 0..1, and its derivative."""
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x), 6 * x * (1 - x)
