"""Visible sync: what a viewer sees of the speech (DESIGN §10).

Motion size is the inner-lip aperture — the distance between landmarks 13 and 14 (the inner
lips' mid-line) over the distance between the outer eye corners 33 and 263 (inter-ocular
distance, IOD) — measured per phone class against a phone alignment: open vowels against P/B/M
and against silence. A correlation alone hides a mouth that moves 1 mm in time with the speech;
a visible sync is a difference of at least VISIBLE_DIFFERENCE_IOD. The same measure works on
re-tracked output frames (landmarks in pixels) and on predicted canonical meshes.

Sharpness is the variance of the Laplacian inside the lower-face box (nose bottom to chin,
mouth corners widened), output over input: a plain x264 crf-18 re-encode keeps about 0.97.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..face import topology
from ..face.lips import aperture_iod
from ..mouth.viseme_rig import VisemeRig

BILABIALS = frozenset({"P", "B", "M"})
OPEN_VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY"})
SILENCES = frozenset({"SIL"})
# Open vowels minus P/B/M (or silence) of at least this many IOD reads as a mouth that speaks.
VISIBLE_DIFFERENCE_IOD = 0.05
MAX_LAG = 5

PhoneTimings = Sequence[tuple[str, float, float]]


def frame_phones(phones: PhoneTimings, frame_count: int, fps: float) -> np.ndarray:
    """The phone (stress digits removed, upper case) at each frame's centre; "SIL" outside phones."""
    labels = np.full(frame_count, "SIL", dtype=object)
    centres = (np.arange(frame_count) + 0.5) / fps
    for phone, start, end in phones:
        labels[(centres >= start) & (centres < end)] = str(phone).rstrip("012").upper()
    return labels


def _lagged_correlation(values: np.ndarray, reference: np.ndarray, max_lag: int) -> dict[int, float]:
    """{lag: Pearson r of values[t + lag] vs reference[t]} over the frames where both are finite."""
    result = {}
    count = len(reference)
    for lag in range(-max_lag, max_lag + 1):
        a = values[max(lag, 0): count + min(lag, 0)]
        b = reference[max(-lag, 0): count - max(lag, 0)]
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        result[lag] = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 1e-9 and b.std() > 1e-9 else float("nan")
    return result


@dataclass
class VisibleSync:
    """Aperture statistics of one clip, in IOD (NaN where a class has no frame)."""

    open_vowel: float
    bilabial: float
    silence: float
    p10: float
    p90: float
    correlation: float       # at lag 0 with the openness reference (NaN without one)
    best_lag: int | None     # frames; > 0: the mouth is late
    best_lag_correlation: float
    frames: int

    @property
    def open_minus_bilabial(self) -> float:
        return self.open_vowel - self.bilabial

    @property
    def open_minus_silence(self) -> float:
        return self.open_vowel - self.silence

    @property
    def spread(self) -> float:
        return self.p90 - self.p10

    @property
    def visible(self) -> bool:
        return min(self.open_minus_bilabial, self.open_minus_silence) >= VISIBLE_DIFFERENCE_IOD

    def as_dict(self) -> dict:
        return {**asdict(self), "open_minus_bilabial": self.open_minus_bilabial,
                "open_minus_silence": self.open_minus_silence, "spread": self.spread, "visible": self.visible}

    def line(self) -> str:
        return (f"open vowel {self.open_vowel:.3f}, P/B/M {self.bilabial:.3f}, silence {self.silence:.3f} IOD "
                f"(open − P/B/M {self.open_minus_bilabial:+.3f}, open − silence {self.open_minus_silence:+.3f}); "
                f"p10–p90 {self.p10:.3f}–{self.p90:.3f}; r {self.correlation:.2f} at lag 0, "
                f"best {self.best_lag_correlation:.2f} at {self.best_lag}; "
                f"{'visible' if self.visible else f'under {VISIBLE_DIFFERENCE_IOD} IOD: not visible'}")


def visible_sync(apertures: np.ndarray, labels: np.ndarray, openness: np.ndarray | None = None,
                 max_lag: int = MAX_LAG) -> VisibleSync:
    """VisibleSync of per-frame apertures [T] (IOD, NaN where untracked) against per-frame phone
    labels [T] (frame_phones) and, optionally, a reference openness curve [T] (e.g. the viseme
    rig's aperture on the same alignment) for the correlation and lag."""
    apertures = np.asarray(apertures, dtype=np.float64)
    labels = np.asarray(labels, dtype=object)
    count = min(len(apertures), len(labels))
    apertures, labels = apertures[:count], labels[:count]
    finite = np.isfinite(apertures)

    def class_mean(phones: frozenset[str]) -> float:
        chosen = finite & np.isin(labels, list(phones))
        return float(apertures[chosen].mean()) if chosen.any() else float("nan")

    p10, p90 = (np.percentile(apertures[finite], [10, 90]) if finite.any() else (float("nan"), float("nan")))
    correlation, best_lag, best_r = float("nan"), None, float("nan")
    if openness is not None:
        by_lag = _lagged_correlation(apertures, np.asarray(openness, dtype=np.float64)[:count], max_lag)
        correlation = by_lag[0]
        scored = {lag: r for lag, r in by_lag.items() if np.isfinite(r)}
        if scored:
            best_lag = max(scored, key=scored.get)
            best_r = scored[best_lag]
    return VisibleSync(open_vowel=class_mean(OPEN_VOWELS), bilabial=class_mean(BILABIALS),
                       silence=class_mean(SILENCES), p10=float(p10), p90=float(p90), correlation=correlation,
                       best_lag=best_lag, best_lag_correlation=best_r, frames=int(finite.sum()))


def lower_face_box(landmarks: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) pixel box from the nose bottom to the chin, between the mouth corners
    widened by half the mouth's width, of one face's landmarks [468,≥2]; None if empty."""
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    left, right = points[topology.MOUTH_CORNERS[0]], points[topology.MOUTH_CORNERS[1]]
    half_width = 0.5 * abs(right[0] - left[0])
    x0 = min(left[0], right[0]) - half_width
    x1 = max(left[0], right[0]) + half_width
    y0, y1 = points[topology.NOSE_BOTTOM, 1], points[topology.CHIN, 1]
    height, width = frame_size
    box = (int(max(0, np.floor(x0))), int(max(0, np.floor(y0))), int(min(width, np.ceil(x1))), int(min(height, np.ceil(y1))))
    return box if box[2] - box[0] > 2 and box[3] - box[1] > 2 else None


def laplacian_variance(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image [H,W,3] (any scale) inside `box`."""
    x0, y0, x1, y1 = box
    grey = np.asarray(image, dtype=np.float64)[y0:y1, x0:x1].mean(-1)
    laplacian = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1])
    return float(laplacian.var())


def sharpness_ratio(output: np.ndarray, source: np.ndarray, landmarks: np.ndarray) -> float:
    """Lower-face detail kept: Laplacian variance of `output` over that of `source` ([H,W,3]
    frames of one size) in the lower-face box of the source's landmarks [468,≥2]."""
    box = lower_face_box(landmarks, source.shape[:2])
    if box is None:
        return float("nan")
    reference = laplacian_variance(source, box)
    return laplacian_variance(output, box) / reference if reference > 0 else float("nan")


def rest_openness(phones: PhoneTimings, frame_count: int, fps: float) -> np.ndarray:
    """A reference openness curve [T]: the viseme rig's aperture (IOD) on the alignment, in the
    rig's reference style; what re-tracked apertures are correlated with."""
    rig = VisemeRig()
    meshes = (rig.rest + rig(list(phones), frame_count=frame_count, fps=fps)).numpy()
    return aperture_iod(meshes)
