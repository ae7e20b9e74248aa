"""FaceTracker: MediaPipe-style face detection and 468-point landmark tracking in pure PyTorch.

Per still image (`detect`, `detect_many`): short-range face detection → ROI from the best
detection → landmark network (MediaPipe FaceMesh in static-image mode).

Per clip (`track`, `track_landmarks`, `iter_landmarks`, `track_stream`), as MediaPipe FaceMesh in
video mode: the detector runs on the first frame and whenever the face is lost; otherwise each
frame's ROI comes from the previous frame's landmarks. One deliberate difference: when the
tracked face is lost (presence < 0.5), the detector is tried again on that same frame, where
MediaPipe would give the frame up and detect on the next one. Frames without a face are
flagged invalid (their landmarks are zeros); that is never an error.

Batching: frames travel to the device a batch at a time; through stretches without a face the
detector scans ahead over a growing window of frames (1, 2, 4, … up to `batch_size`) in one
call — detection is frame-local, so this finds the same faces as one frame at a time; and
`detect_many` runs detector and landmark network batched over still images. The landmark
stage of tracking is sequential by nature (each ROI needs the previous frame's landmarks) and
runs one frame per call.

Accepted images (a frame of a clip likewise, with a leading T axis):
- uint8 RGB [H, W, 3] — the native format;
- grayscale [H, W] or [H, W, 1] — replicated to three channels;
- RGBA [H, W, 4] — the alpha channel is dropped (not composited), as MediaPipe does;
- floating point in 0..1 (ComfyUI's IMAGE convention) — scaled to 0..255 and rounded;
- numpy arrays or torch tensors (on any device).
Any size of at least 1×1 works. The detector letterboxes the frame into 128×128, so small
frames are upsampled: in a 64×64 frame a face down to about 13 pixels wide is still found (the
astronaut test photo is found at 13 px and lost at 10 px; landmarks then carry correspondingly
little detail); a smaller face, or a frame too small to hold one, yields no detection — detect
returns None and the frame is invalid in a track — never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import ResyncerInputError
from .detector import FaceDetection, FaceDetector
from .landmark_model import NUM_LANDMARKS, FaceLandmarkModel, roi_from_detection, roi_from_landmarks
from .observation import FaceObservation
from .roi_warp import SquareRois
from .selection import FaceChoice, FaceSelector

DEFAULT_SMOOTHING = 0.5


def _to_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def as_rgb_uint8(images, *, leading_axes: int) -> np.ndarray:
    """Normalise images with `leading_axes` batch axes (0 for one image, 1 for a clip) to uint8
    RGB [..., H, W, 3] (see the module docstring for what is accepted)."""
    array = _to_numpy(images)
    if array.ndim == leading_axes + 2:
        array = array[..., None]
    if array.ndim != leading_axes + 3 or array.shape[-1] not in (1, 3, 4):
        layout = "[H, W, C]" if leading_axes == 0 else "[T, H, W, C]"
        raise ResyncerInputError(f"Expected images shaped {layout} with C = 1, 3 or 4 (or no C for grayscale), "
                                 f"got shape {tuple(array.shape)}.")
    if 0 in array.shape[leading_axes:]:
        raise ResyncerInputError(f"Images must be at least 1×1 pixels, got shape {tuple(array.shape)}.")
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.round(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ResyncerInputError(f"Images must be uint8 (0..255) or floating point (0..1), got {array.dtype}.")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


class FaceTracker:
    """Face detection and landmark tracking on `device` ("cpu", "cuda", …); the networks load on
    first use. With several faces in view, `face` says which one to follow (face.selection:
    "largest", "center" or "index N"); `most_faces_seen` counts the most found in one frame."""

    def __init__(self, device: str | torch.device = "cpu", *, min_detection_score: float = 0.5,
                 min_presence: float = 0.5, batch_size: int = 16, face: FaceChoice | str = "largest"):
        self.face = FaceChoice.parse(face)
        self.most_faces_seen = 0
        self.device = torch.device(device)
        self.min_presence = min_presence
        self.batch_size = batch_size
        self.detector = FaceDetector(self.device, min_score=min_detection_score)
        self.landmark_model = FaceLandmarkModel(self.device)

    def _to_device(self, frames: np.ndarray) -> torch.Tensor:
        # Frames from np.asarray(PIL image) or a memory map are read-only; torch warns on those.
        if not frames.flags.writeable:
            frames = frames.copy()
        return torch.from_numpy(frames).to(self.device)

    # ----------------------------------------------------------------------------------- stills

    def detect(self, image) -> FaceObservation | None:
        """The face the `face` rule picks in one image, or None when there is none."""
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence) -> list[FaceObservation | None]:
        """`detect` for several images (sizes may differ), batched per image size."""
        prepared = [as_rgb_uint8(image, leading_axes=0) for image in images]
        results: list[FaceObservation | None] = [None] * len(prepared)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(prepared):
            by_size.setdefault(image.shape[:2], []).append(index)
        for indices in by_size.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                frames = self._to_device(np.stack([prepared[i] for i in chunk]))
                detections = self.detector.detect(frames)
                picked = [self._selector().pick(faces, frames.shape[1:3]) for faces in detections]
                found = [k for k, face in enumerate(picked) if face is not None]
                if not found:
                    continue
                best = [picked[k] for k in found]
                observations = self._landmarks_from_detections(frames[found], best)
                for k, observation in zip(found, observations):
                    results[chunk[k]] = observation
        return results

    def _landmarks_from_detections(self, frames: torch.Tensor,
                                   detections: list[FaceDetection]) -> list[FaceObservation | None]:
        boxes = torch.from_numpy(np.stack([d.box for d in detections])).to(self.device)
        keypoints = torch.from_numpy(np.stack([d.keypoints for d in detections])).to(self.device)
        landmarks, presence = self.landmark_model.predict(frames, roi_from_detection(boxes, keypoints))
        landmarks, presence = landmarks.cpu().numpy(), presence.cpu().numpy()
        return [FaceObservation(landmarks[k], d.box, float(presence[k]), d.keypoints, d.score)
                if presence[k] >= self.min_presence else None
                for k, d in enumerate(detections)]

    def _selector(self) -> FaceSelector:
        return FaceSelector(self.face, on_count=self._count_faces)

    def _count_faces(self, count: int) -> None:
        self.most_faces_seen = max(self.most_faces_seen, count)

    # ----------------------------------------------------------------------------------- clips

    def iter_landmarks(self, frame_batches: Iterable) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Track through a stream of frame batches ([t, H, W, C] each, any accepted format), keeping
        the tracking state across batches; yields (landmarks float32 [t, 468, 3], valid bool [t])
        per batch, so a long video never has to be in memory as a whole."""
        previous_roi: SquareRois | None = None
        selector = self._selector()
        for batch in frame_batches:
            frames = self._to_device(as_rgb_uint8(batch, leading_axes=1))
            count = frames.shape[0]
            landmarks = np.zeros((count, NUM_LANDMARKS, 3), np.float32)
            valid = np.zeros(count, bool)
            detections: dict[int, list[FaceDetection]] = {}
            scan_width = 1  # grows while consecutive frames have no face

            def detections_at(index: int) -> list[FaceDetection]:
                nonlocal scan_width
                if index not in detections:
                    window = range(index, min(index + scan_width, count))
                    detections.update(zip(window, self.detector.detect(frames[window.start:window.stop])))
                    scan_width = min(scan_width * 2, self.batch_size)
                return detections[index]

            for index in range(count):
                frame = frames[index:index + 1]
                points = None
                if previous_roi is not None:
                    points, presence = self.landmark_model.predict(frame, previous_roi)
                    if presence.item() < self.min_presence:
                        points = None  # lost: try the detector on this same frame
                if points is None and (chosen := selector.pick(detections_at(index), frame.shape[1:3])) is not None:
                    detected = self._landmarks_from_detections(frame, [chosen])[0]
                    if detected is not None:
                        points = torch.from_numpy(detected.landmarks[None]).to(self.device)
                if points is None:
                    previous_roi = None
                    continue
                scan_width = 1
                previous_roi = roi_from_landmarks(points)
                landmarks[index] = points[0].cpu().numpy()
                valid[index] = True
                selector.follow(landmarks[index])
            yield landmarks, valid

    def track_landmarks(self, frames) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks float32 [T, 468, 3] (pixels, zeros where no face) and valid bool [T] for a clip
        [T, H, W, C] (any accepted format)."""
        count = len(frames)
        batches = (frames[start:start + self.batch_size] for start in range(0, count, self.batch_size))
        parts = list(self.iter_landmarks(batches))
        if not parts:
            return np.zeros((0, NUM_LANDMARKS, 3), np.float32), np.zeros(0, bool)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def track(self, frames, fps: float = 25.0, smoothing: float = DEFAULT_SMOOTHING):
        """Track a clip [T, H, W, C] (any accepted format) into a FaceTrack (pose, canonical mesh,
        template, crop transforms; see resyncer_core.face.track)."""
        array = frames if isinstance(frames, (np.ndarray, torch.Tensor)) else np.asarray(frames)
        if array.ndim not in (3, 4) or len(array) == 0:
            raise ResyncerInputError(
                f"Expected a clip shaped [T, H, W, C] with T ≥ 1, got shape {tuple(array.shape)}.")
        landmarks, valid = self.track_landmarks(array)
        return self._build_track(landmarks, valid, fps, (int(array.shape[1]), int(array.shape[2])), smoothing)

    def track_stream(self, frame_batches: Iterable, fps: float = 25.0, smoothing: float = DEFAULT_SMOOTHING):
        """`track` for a video that arrives as an iterable of frame batches [t, H, W, C] (e.g. decoded
        chunk by chunk); only the landmarks are kept, never the frames."""
        sizes: set[tuple[int, int]] = set()

        def remember_sizes(batches: Iterable) -> Iterator[np.ndarray]:
            for batch in batches:
                prepared = as_rgb_uint8(batch, leading_axes=1)
                sizes.add(prepared.shape[1:3])
                yield prepared

        parts = list(self.iter_landmarks(remember_sizes(frame_batches)))
        if len(sizes) != 1:
            raise ResyncerInputError(f"A video stream needs frames of one size, got {sorted(sizes) or 'no frames'}.")
        landmarks = np.concatenate([p[0] for p in parts])
        valid = np.concatenate([p[1] for p in parts])
        return self._build_track(landmarks, valid, fps, sizes.pop(), smoothing)

    @staticmethod
    def _build_track(landmarks: np.ndarray, valid: np.ndarray, fps: float, frame_size: tuple[int, int],
                     smoothing: float):
        from .track import build_face_track  # face geometry: canonical space, pose, crops

        return build_face_track(landmarks, valid, fps=fps, frame_size=frame_size, smoothing=smoothing)
