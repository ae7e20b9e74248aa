"""Produce the MediaPipe reference fixtures in tests/data/face/ (developer tool, not run by tests).

Runs the real MediaPipe 0.10.21 solutions, so it needs a THROWAWAY environment outside the
repository (mediapipe pins numpy<2, which the project does not):

    python3 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install mediapipe==0.10.21 "numpy<2" scikit-image ai-edge-litert
    /tmp/mpvenv/bin/python tools/compare_mediapipe.py [--out tests/data/face]

It writes:
- <name>.png: scikit-image's astronaut photo (NASA, public domain) cropped to the face
  (astronaut.png, 320×320) and variants needing scikit-image: rotated ±20°, half scale. The tests
  rebuild the other variants (mirrored, darker, a wide and a tall crop) with numpy, as
  derived_images() does;
- mediapipe_reference.npz, per image name:
    <name>/landmarks  float32 [468, 3]  FaceMesh (static_image_mode, refine_landmarks off), x and y
                                        in image pixels, z × image width (MediaPipe's z is
                                        normalised like x), i.e. pixels on the x scale;
    <name>/box        float32 [4]       FaceDetection (model_selection=0) best box x0, y0, x1, y1 px;
    <name>/keypoints  float32 [6, 2]    its keypoints in pixels;  <name>/score  its score;
  plus a tracking clip (FaceMesh in video mode) of 240×240 windows of astronaut.png at
  clip/offsets (x, y), with frame clip/blank_frame replaced by flat grey:
    clip/landmarks    float32 [T, 468, 3]   (NaN where MediaPipe found no face)
  and raw network outputs for fixed inputs sliced from astronaut.png (no resampling involved),
  computed with the LiteRT interpreter on the original .tflite files:
    raw/detector_input uint8 [128, 128, 3] = astronaut[32:288:2, 32:288:2];
    raw/detector_regressors [896, 16], raw/detector_logits [896];
    raw/landmark_input uint8 [192, 192, 3] = astronaut[40:232, 65:257];
    raw/landmarks [1404], raw/presence_logit [1].
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
BLANK_FRAME = 5


def make_images() -> dict[str, np.ndarray]:
    from skimage import data, transform

    photo = data.astronaut()  # 512×512 RGB uint8; the face is near x 177..273, y 83..178
    base = photo[0:320, 64:384]

    def rotated(degrees: float) -> np.ndarray:
        turned = transform.rotate(base, degrees, mode="edge", preserve_range=True)
        return np.clip(np.round(turned), 0, 255).astype(np.uint8)

    half = transform.resize(base, (160, 160), anti_aliasing=True, preserve_range=True)
    stored = {
        "astronaut": base,
        "rotated_plus20": rotated(20.0),
        "rotated_minus20": rotated(-20.0),
        "half_scale": np.clip(np.round(half), 0, 255).astype(np.uint8),
    }
    return stored | derived_images(base)


def derived_images(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    """Variants the tests rebuild from astronaut.png with numpy alone (so no PNG is stored)."""
    return {
        "mirrored": np.ascontiguousarray(astronaut[:, ::-1]),
        "darker": np.round(astronaut * 0.6).astype(np.uint8),
        "wide": np.ascontiguousarray(astronaut[30:230]),
        "tall": np.ascontiguousarray(astronaut[:, 61:261]),
    }


def clip_frames(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.array([(40 + 4 * k, 10 + 3 * k) for k in range(10)], dtype=np.int32)
    frames = np.stack([astronaut[y:y + 240, x:x + 240] for x, y in offsets])
    frames[BLANK_FRAME] = 128
    return frames, offsets


def landmarks_in_pixels(result, width: int, height: int) -> np.ndarray | None:
    if not result.multi_face_landmarks:
        return None
    points = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * width, p.y * height, p.z * width] for p in points], dtype=np.float32)


def raw_network_outputs(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    import mediapipe
    from ai_edge_litert.interpreter import Interpreter

    modules = Path(mediapipe.__file__).parent / "modules"
    outputs = {}

    def run(model: Path, image: np.ndarray) -> dict[str, np.ndarray]:
        interpreter = Interpreter(model_path=str(model))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        return {d["name"]: interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()}

    detector_input = np.ascontiguousarray(astronaut[32:288:2, 32:288:2])
    result = run(modules / "face_detection" / "face_detection_short_range.tflite",
                 detector_input.astype(np.float32) / 127.5 - 1.0)
    outputs.update({"raw/detector_input": detector_input, "raw/detector_regressors": result["regressors"],
                    "raw/detector_logits": result["classificators"][:, 0]})
    landmark_input = np.ascontiguousarray(astronaut[40:232, 65:257])
    result = run(modules / "face_landmark" / "face_landmark.tflite", landmark_input.astype(np.float32) / 255.0)
    outputs.update({"raw/landmark_input": landmark_input, "raw/landmarks": result["conv2d_21"].reshape(-1),
                    "raw/presence_logit": result["conv2d_31"].reshape(-1)})
    return outputs


def main() -> int:
    import mediapipe as mp
    from PIL import Image

    parser = argparse.ArgumentParser(description="Write MediaPipe reference fixtures.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "tests" / "data" / "face")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    reference: dict[str, np.ndarray] = {}
    images = make_images()
    derived = derived_images(images["astronaut"])
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                         min_detection_confidence=0.5) as mesh, \
            mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
        for name, image in images.items():
            if name not in derived:
                Image.fromarray(image).save(args.out / f"{name}.png", optimize=True)
            height, width = image.shape[:2]
            landmarks = landmarks_in_pixels(mesh.process(image), width, height)
            detections = detector.process(image).detections
            if landmarks is None or not detections:
                raise RuntimeError(f"MediaPipe found no face in {name}")
            best = max(detections, key=lambda d: d.score[0])
            box = best.location_data.relative_bounding_box
            reference[f"{name}/landmarks"] = landmarks
            reference[f"{name}/box"] = np.array([box.xmin * width, box.ymin * height, (box.xmin + box.width) * width,
                                                 (box.ymin + box.height) * height], dtype=np.float32)
            reference[f"{name}/keypoints"] = np.array(
                [[k.x * width, k.y * height] for k in best.location_data.relative_keypoints], dtype=np.float32)
            reference[f"{name}/score"] = np.float32(best.score[0])
            print(f"{name}: {width}×{height}, detection score {best.score[0]:.3f}")

    frames, offsets = clip_frames(images["astronaut"])
    tracked = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                         min_detection_confidence=0.5, min_tracking_confidence=0.5) as mesh:
        for frame in frames:
            landmarks = landmarks_in_pixels(mesh.process(frame), frame.shape[1], frame.shape[0])
            tracked.append(np.full((468, 3), np.nan, np.float32) if landmarks is None else landmarks)
    reference.update({"clip/offsets": offsets, "clip/blank_frame": np.int32(BLANK_FRAME),
                      "clip/landmarks": np.stack(tracked)})
    print("clip: faces on frames", [int(not np.isnan(t).any()) for t in tracked])

    reference.update(raw_network_outputs(images["astronaut"]))
    np.savez_compressed(args.out / "mediapipe_reference.npz", **reference)
    print(f"wrote {args.out / 'mediapipe_reference.npz'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
