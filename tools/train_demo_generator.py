"""Train the shipped demo generator: the small preset on synthetic talking clips of the demo face.

    python tools/train_demo_generator.py --out demo_generator --seed 0

1. clips: CLIPS × 10 s talking-head clips (512², 25 fps) of the bundled portrait, its mouth
   driven by the viseme rig through the mesh warp (synth.talking_clip), seeds seed+1 … seed+CLIPS;
   demo/target.mp4 is seed 0 and is never trained on. Written to OUT/videos/demo_face/, so the
   dataset has one speaker.
2. `resyncer preprocess` → OUT/data (tracked meshes, aligned crops, audio).
3. `resyncer train stage2 --preset small`, in two phases: STEPS as in the paper (reference among
   the 30 frames nearest the target) → OUT/run, then HIDDEN_STEPS from that generator with the
   reference's lower face hidden (`--hide-reference-lower-face`), the reference anywhere in the
   clip and an extra L1 inside mask A (LOWER_FACE_WEIGHT) → OUT/run-hidden/generator.safetensors
   (EMA weights), which records the face it was trained on (so `--renderer auto` takes the
   warp for any other face).
4. `resyncer eval --compare-renderers` on the held-out clip → OUT/eval.json: PSNR / SSIM / LMD
   of the generator, the mesh warp and the static mouth, each repainting frame t's lower face
   from the frame 75 later.

Every step resumes: existing clips are kept, preprocessing skips indexed clips, training
continues from the run's newest checkpoint. The shipped file is OUT/run-hidden/generator.safetensors
copied to resyncer_core/weights/generator.safetensors (provenance in NOTICE.generator there).

Deviations from the paper's stage 2, for a run that fits in about 90 minutes of a 2-core CPU
(about 75 measured, in pieces; NOTICE.generator):
- the second phase hides the reference frame's lower face from the generator (a generator
  option, so inference hides it too). At inference the reference is the target frame itself
  (paper A.1), and after the first phase the generator copies that frame's own mouth instead
  of following the mesh (a nearby frame's mouth is a good guess of the target's): driven by a
  mesh that opens wide, its re-tracked lip gap followed the original video (r 0.93), not the
  mesh (r 0.28). Far references and the lower-face L1 alone moved that to r 0.62 in 900 more
  steps; the same weights with the reference's lower face hidden followed the mesh at r 0.99
  (in wrong colours: they were not trained that way), hence this phase. Trained from scratch
  with the reference hidden, the small generator drew a paler, blurrier lower face that opened
  less after 1000 steps than this phase does after a few hundred;
- the lower-face L1: the mouth is a few % of the crop, so the whole-crop L1 alone gives it
  little weight;
- the adversarial weight is 0.1 (each phase starts a new discriminator, which has only 1300 or
  1000 steps to become a useful critic; at weight 1 its early noise dominates the reconstruction
  terms) and the EMA decay is 0.995 (0.999 would still remember the first few hundred steps at
  the end).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resyncer_core.cli import main as resyncer
from resyncer_core.errors import ResyncerInputError
from resyncer_core.synth.clip_file import write_synthetic_clip
from resyncer_core.synth.make_demo import DEMO_FPS, DEMO_SIZE

CLIPS = 24
CLIP_SECONDS = 10.0
SPEAKER = "demo_face"
STEPS = 1300
HIDDEN_STEPS = 1000
HIDDEN_REFERENCE_WINDOW = 250    # a 10 s clip's every frame
LOWER_FACE_WEIGHT = 5.0
BATCH_SIZE = 4
ADVERSARIAL_WEIGHT = 0.1
EMA_DECAY = 0.995
EVAL_FRAMES = 250          # the whole held-out clip (10 s)


def write_clips(videos: Path, seed: int, count: int) -> list[Path]:
    """The training clips (kept when already written: each is a pure function of its seed)."""
    folder = videos / SPEAKER
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(1, count + 1):
        clip_seed = seed + index  # ≥ 1: never the demo target's TARGET_SEED (0)
        path = folder / f"clip_{clip_seed:03d}.mp4"
        if not path.is_file():
            write_synthetic_clip(path, CLIP_SECONDS, DEMO_FPS, DEMO_SIZE, with_audio=True, seed=clip_seed)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="work folder: videos/, data/, run/, eval.json")
    parser.add_argument("--seed", type=int, default=0, help="clip seeds start after it; training seed")
    parser.add_argument("--clips", type=int, default=CLIPS, help=f"training clips (default {CLIPS})")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"first-phase stage-2 steps (default {STEPS})")
    parser.add_argument("--hidden-steps", type=int, default=HIDDEN_STEPS,
                        help=f"second-phase steps, the reference's lower face hidden (default {HIDDEN_STEPS})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    if args.seed < 0 or args.clips < 2 or min(args.steps, args.hidden_steps) < 1:
        print("train_demo_generator: error: --seed must be ≥ 0, --clips ≥ 2 (one is held out), --steps and "
              "--hidden-steps ≥ 1", file=sys.stderr)
        return 2
    try:
        paths = write_clips(args.out / "videos", args.seed, args.clips)
    except ResyncerInputError as error:
        print(f"train_demo_generator: error: {error}", file=sys.stderr)
        return 2
    print(f"train_demo_generator: {len(paths)} clips in {args.out / 'videos' / SPEAKER}")
    data, paper_run, hidden_run = args.out / "data", args.out / "run", args.out / "run-hidden"
    status = resyncer(["preprocess", "--videos", str(args.out / "videos"), "-o", str(data), "--device", args.device])
    phases = [(paper_run, args.steps, ["--sample-every", "250", "--validate-every", "500", "--checkpoint-every", "250"]),
              (hidden_run, args.hidden_steps,
               ["--init", str(paper_run / "generator.safetensors"), "--hide-reference-lower-face",
                "--reference-window", str(HIDDEN_REFERENCE_WINDOW), "--lower-face-weight", str(LOWER_FACE_WEIGHT),
                "--sample-every", "100", "--validate-every", "350", "--checkpoint-every", "100"])]
    for run, steps, options in phases:
        if status:
            return status
        resume = ["--resume"] if (run / "checkpoints").is_dir() else []
        status = resyncer(["train", "stage2", "--data", str(data), "-o", str(run), "--preset", "small",
                           "--steps", str(steps), "--batch-size", str(BATCH_SIZE), "--seed", str(args.seed),
                           "--adversarial-weight", str(ADVERSARIAL_WEIGHT), "--ema-decay", str(EMA_DECAY),
                           "--log-every", "10", "--device", args.device, *options, *resume])
    if status:
        return status
    return resyncer(["eval", "--data", str(data), "--generator", str(hidden_run / "generator.safetensors"),
                     "--frames", str(EVAL_FRAMES), "--compare-renderers", "--json", str(args.out / "eval.json"),
                     "--device", args.device])


if __name__ == "__main__":
    sys.exit(main())
