"""The one module of the pack that touches ComfyUI's services, each with a plain fallback.

| service          | inside ComfyUI                                        | without ComfyUI (headless runner, tests)          |
|------------------|-------------------------------------------------------|---------------------------------------------------|
| model folders    | folder_paths "resyncer" → models/resyncer and          | the runner's --models DIR, then $RESYNCER_MODELS   |
|                  | "wav2vec2" → models/wav2vec2 (registered at import)   |                                                   |
| input/output/temp| folder_paths.get_{input,output,temp}_directory()      | the runner's folders, else ./input, ./output, tmp |
| progress         | comfy.utils.ProgressBar                               | resyncer_core.graph.context.report_progress       |
| interrupt        | comfy.model_management.throw_exception_if_processing_ | resyncer_core.graph.context (raises               |
|                  | interrupted                                           | ProcessingInterrupted)                            |
| device           | comfy.model_management.get_torch_device()             | cuda when available, else cpu                     |
| memory           | models offloaded to CPU between runs +                | the same offload; torch.cuda.empty_cache          |
|                  | comfy.model_management.soft_empty_cache()             |                                                   |
| VIDEO values     | comfy_api.latest.InputImpl.VideoFromFile /            | FileVideo / FramesVideo below (same methods)       |
|                  | VideoFromComponents                                   |                                                   |

ComfyUI modules are imported inside the functions that need them, never at import time, so
the pack imports (and every node runs) without ComfyUI; tests install stand-ins for them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from resyncer_core.graph import context as run_context
from resyncer_core.weights import SHIPPED_MODELS_DIR

LOG = logging.getLogger("resyncer.nodes")

MODELS_ENV = "RESYNCER_MODELS"
RESYNCER_FOLDER = "resyncer"
WAV2VEC2_FOLDER = "wav2vec2"
CHECKPOINT_SUFFIXES = (".safetensors",)
DEVICE_CHOICES = ["auto", "cpu", "cuda"]
MEL_ENCODER = "mel"
WHISPER_ENCODER = "whisper (shipped)"
# Combo entries for files in resyncer_core/weights carry this suffix, so they never shadow or
# are shadowed by a user's file of the same name.
SHIPPED_SUFFIX = " (shipped)"


# ------------------------------------------------------------------------------ ComfyUI modules

def _comfy_module(name: str):
    """The ComfyUI module `name` when this process runs inside ComfyUI (or a test installed a
    stand-in), else None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def folder_paths_module():
    module = _comfy_module("folder_paths")
    return module if module is not None and hasattr(module, "get_folder_paths") else None


def model_management_module():
    return _comfy_module("comfy.model_management")


def in_comfyui() -> bool:
    return folder_paths_module() is not None


def register_model_folders() -> None:
    """At pack import inside ComfyUI: make "resyncer" and "wav2vec2" known model folders
    (models/resyncer, models/wav2vec2), so extra_model_paths.yaml can add more. A no-op
    without ComfyUI."""
    folder_paths = folder_paths_module()
    if folder_paths is None:
        return
    models_dir = getattr(folder_paths, "models_dir", None)
    if not models_dir:
        return
    for name in (RESYNCER_FOLDER, WAV2VEC2_FOLDER):
        known = getattr(folder_paths, "folder_names_and_paths", {})
        default = os.path.join(models_dir, name)
        if name in known and default in known[name][0]:
            continue
        folder_paths.add_model_folder_path(name, default)


# ------------------------------------------------------------------------------ model folders

def model_roots(folder: str = RESYNCER_FOLDER) -> list[Path]:
    """Folders searched for `folder` ("resyncer" or "wav2vec2"), first match wins: the
    runner's --models DIR, ComfyUI's registered folders, $RESYNCER_MODELS. Wav2Vec2 folders are
    also looked for under the resyncer folders (`resyncer models init` writes one there)."""
    roots: list[Path] = []
    configured = run_context.current().models_dir
    if configured is not None:
        roots.append(Path(configured))
    folder_paths = folder_paths_module()
    if folder_paths is not None:
        names = [folder] if folder == RESYNCER_FOLDER else [WAV2VEC2_FOLDER, RESYNCER_FOLDER]
        for name in names:
            with contextlib.suppress(Exception):
                roots.extend(Path(p) for p in folder_paths.get_folder_paths(name))
    env = os.environ.get(MODELS_ENV)
    if env:
        roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


_KIND_CACHE: dict[tuple[str, float, int], str | None] = {}
_KIND_LOCK = threading.Lock()


def checkpoint_kind(path: Path) -> str | None:
    """The resyncer.kind a checkpoint declares (cached by path, mtime and size), None when the
    file has no resyncer metadata."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime, stat.st_size)
    with _KIND_LOCK:
        if key in _KIND_CACHE:
            return _KIND_CACHE[key]
    from resyncer_core.models.checkpoint import read_checkpoint_header

    try:
        kind = read_checkpoint_header(path).kind
    except Exception:  # noqa: BLE001  any unreadable file is simply not offered in the combo
        kind = None
    with _KIND_LOCK:
        _KIND_CACHE[key] = kind
    return kind


def _walk_files(root: Path, max_depth: int = 8) -> list[Path]:
    """Files under `root` (following symlinked folders, as model folders often are), skipping
    hidden entries, sorted; at most `max_depth` folders deep."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for directory, folders, files in os.walk(root, followlinks=True):
        depth = len(Path(directory).relative_to(root).parts)
        folders[:] = sorted(f for f in folders if not f.startswith(".")) if depth < max_depth else []
        found += [Path(directory) / f for f in files if not f.startswith(".")]
    return sorted(found)


def list_checkpoints(kind: str | None = None) -> list[str]:
    """Checkpoint names (paths relative to their model folder, "/"-separated) for a loader's
    combo; with `kind`, only files whose metadata declares that kind. Sorted, files whose name
    contains the kind first (e.g. generator.safetensors for kind "generator"), then the shipped
    ones ("name (shipped)")."""
    names: list[str] = []
    for root in model_roots(RESYNCER_FOLDER):
        for path in _walk_files(root):
            if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
                continue
            if kind is not None and checkpoint_kind(path) != kind:
                continue
            name = path.relative_to(root).as_posix()
            if name not in names:
                names.append(name)
    if kind is not None:
        names.sort(key=lambda n: (kind not in Path(n).name.lower(), n))
    # The shipped files last: a user's own models come first in the combo.
    return names + [path.name + SHIPPED_SUFFIX for path in sorted(SHIPPED_MODELS_DIR.glob("*.safetensors"))
                    if kind is None or checkpoint_kind(path) == kind]


def list_wav2vec2_models() -> list[str]:
    """Hugging Face-format Wav2Vec2 folders (holding config.json) under the wav2vec2 roots, by
    path relative to their root; the shipped Whisper encoder and "mel" (the mel-spectrogram
    front-end) are always offered."""
    names: list[str] = []
    for root in model_roots(WAV2VEC2_FOLDER):
        for config in _walk_files(root, max_depth=3):
            if config.name != "config.json":
                continue
            folder = config.parent
            relative = folder.relative_to(root)
            if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
                continue
            name = relative.as_posix() if relative.parts else folder.name
            if name not in names:
                names.append(name)
    return names + [WHISPER_ENCODER, MEL_ENCODER]


def resolve_model(folder: str, name: str) -> Path:
    """The file or folder `name` in the first model root that has it."""
    from resyncer_core.errors import ResyncerInputError

    if name.endswith(SHIPPED_SUFFIX) and (SHIPPED_MODELS_DIR / name.removesuffix(SHIPPED_SUFFIX)).is_file():
        return SHIPPED_MODELS_DIR / name.removesuffix(SHIPPED_SUFFIX)
    candidate = Path(name).expanduser()
    if candidate.is_absolute():
        if candidate.exists():
            return candidate
        raise ResyncerInputError(f"model {candidate} does not exist; check the path")
    roots = model_roots(folder)
    for root in roots:
        path = root / name
        if path.exists():
            return path
        if folder == WAV2VEC2_FOLDER and root.name == name and (root / "config.json").is_file():
            return root
    where = ", ".join(str(r) for r in roots) or f"no folder (set {MODELS_ENV} or pass --models DIR)"
    raise ResyncerInputError(f"model {name!r} was not found in {where}; {how_to_get_models(roots)}")


def how_to_get_models(roots: list[Path]) -> str:
    """Where trained model files go, and the shipped ones that need no folder. Never random
    `models init` weights: in a models folder they would list before the shipped trained
    files and draw noise."""
    target = roots[0] if roots else Path("models") / RESYNCER_FOLDER
    return (f"choose an entry ending in{SHIPPED_SUFFIX} (the weights that come with resyncer), or put trained "
            f"checkpoints from `resyncer train` (and a wav2vec2 folder) in {target}")


def combo_or_placeholder(names: list[str], placeholder: str) -> list[str]:
    """A combo needs at least one entry for ComfyUI's frontend; an empty folder shows a hint
    (which the loader then rejects with a one-line error)."""
    return names if names else [placeholder]


# ------------------------------------------------------------------------------ files

def input_directory() -> Path:
    folder_paths = folder_paths_module()
    if folder_paths is not None and hasattr(folder_paths, "get_input_directory"):
        return Path(folder_paths.get_input_directory())
    return Path(run_context.current().input_dir or Path.cwd())


def output_directory() -> Path:
    configured = run_context.current().output_dir
    folder_paths = folder_paths_module()
    if configured is None and folder_paths is not None and hasattr(folder_paths, "get_output_directory"):
        return Path(folder_paths.get_output_directory())
    return Path(configured or Path.cwd() / "output")


def temp_directory() -> Path:
    configured = run_context.current().temp_dir
    folder_paths = folder_paths_module()
    if configured is None and folder_paths is not None and hasattr(folder_paths, "get_temp_directory"):
        return Path(folder_paths.get_temp_directory())
    return Path(configured or Path(tempfile.gettempdir()) / "resyncer")


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus")
# ComfyUI's upload widgets and "Open in ..." name files as "name [input|output|temp]".
_ANNOTATIONS = {"[input]": input_directory, "[output]": output_directory, "[temp]": temp_directory}


def list_input_files(suffixes: tuple[str, ...]) -> list[str]:
    """Names (relative to the input folder, "/"-separated, sorted) of its files with one of
    `suffixes`, two folders deep at most (uploads land in the folder itself or a subfolder):
    the options of a file combo."""
    root = input_directory()
    return [path.relative_to(root).as_posix() for path in _walk_files(root, max_depth=2)
            if path.suffix.lower() in suffixes]


def resolve_input_path(name: str) -> Path:
    """An absolute path as given; "name [input]" (or [output], [temp]) in that folder; a
    relative one against ComfyUI's input folder (or the runner's), falling back to the working
    directory."""
    from resyncer_core.errors import ResyncerInputError

    text = (name or "").strip()
    if not text:
        raise ResyncerInputError("no file was given; choose one from the list, upload one, or type a path")
    for annotation, folder in _ANNOTATIONS.items():
        if text.endswith(annotation):
            return folder() / text[:-len(annotation)].strip()
    candidate = Path(text).expanduser()
    if candidate.is_absolute():
        return candidate
    for base in (input_directory(), Path.cwd()):
        if (base / candidate).exists():
            return base / candidate
    return input_directory() / candidate


def output_folder(filename_prefix: str) -> Path:
    """The folder a prefix names under the output folder (nothing is created); refuses
    prefixes that climb out of it or run into a file."""
    from resyncer_core.errors import ResyncerInputError
    from resyncer_core.video.partial_file import check_output_location

    root = output_directory().resolve()
    folder = (root / Path(filename_prefix or "ReSyncer").parent).resolve()
    if folder != root and root not in folder.parents:
        raise ResyncerInputError(f"filename_prefix {filename_prefix!r} points outside the output folder; use a relative name")
    check_output_location(folder / (Path(filename_prefix or "ReSyncer").name or "ReSyncer"))
    return folder


def input_file_problem(name) -> bool | str:
    """VALIDATE_INPUTS for a file input: True when `name` resolves to a file (a name from the
    combo, an uploaded one, or a typed path, as the headless runner and `--set` give), else the
    one-line message ComfyUI shows before anything runs. A linked input (None here) passes."""
    if name is None:
        return True
    try:
        path = resolve_input_path(str(name))
    except Exception as error:  # noqa: BLE001  the message is the answer
        return str(error)
    if path.is_file():
        return True
    if Path(str(name)).expanduser().is_absolute():
        return f"file {path} does not exist; check the path, or choose or upload a file in the input folder"
    return f"file {name!r} was not found in the input folder ({input_directory()}); upload it or give its full path"


def output_path(filename_prefix: str, extension: str) -> tuple[Path, dict]:
    """A new file path under the output folder and its UI entry {"filename", "subfolder",
    "type": "output"}; numbering follows ComfyUI's prefix_00001_ scheme. Refuses prefixes that
    climb out of the output folder."""
    root = output_directory().resolve()
    folder = output_folder(filename_prefix)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = Path(filename_prefix or "ReSyncer")
    stem = prefix.name or "ReSyncer"
    counter = 1
    for existing in folder.glob(f"{stem}_*{extension}"):
        digits = existing.name[len(stem) + 1:].split("_")[0].split(".")[0]
        if digits.isdigit():
            counter = max(counter, int(digits) + 1)
    path = folder / f"{stem}_{counter:05d}_{extension}"  # ComfyUI's name_00001_.ext
    subfolder = "" if folder == root else folder.relative_to(root).as_posix()
    return path, {"filename": path.name, "subfolder": subfolder, "type": "output"}


def save_preview(images, prefix: str = "ReSyncer_preview", max_frames: int = 8) -> list[dict]:
    """A contact sheet of up to `max_frames` evenly spaced frames of images ([T,H,W,3] float
    0..1 or uint8) as a PNG in the temp folder; returns ComfyUI UI entries ({"filename",
    "subfolder", "type": "temp"}), empty when there is nothing to show."""
    from PIL import Image

    array = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if array.ndim != 4 or len(array) == 0:
        return []
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    indices = np.unique(np.linspace(0, len(array) - 1, min(max_frames, len(array))).round().astype(int))
    tiles = array[indices][..., :3]
    columns = min(4, len(tiles))
    rows = -(-len(tiles) // columns)
    height, width = tiles.shape[1:3]
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * height:(r + 1) * height, c * width:(c + 1) * width] = tile
    folder = temp_directory()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}.png"
    Image.fromarray(sheet).save(folder / name, compress_level=1)
    return [{"filename": name, "subfolder": "", "type": "temp"}]


# ------------------------------------------------------------------------------ VIDEO values

class FileVideo:
    """A VIDEO backed by a file, for runs without ComfyUI: the methods of ComfyUI's
    VideoFromFile that the pack and core nodes use."""

    def __init__(self, path):
        self.path = Path(path)

    def get_stream_source(self) -> str:
        return str(self.path)

    def get_dimensions(self) -> tuple[int, int]:
        from resyncer_core.video import probe_video

        info = probe_video(self.path)
        return info.width, info.height

    def get_frame_rate(self):
        from resyncer_core.video import probe_video

        return probe_video(self.path).frame_rate

    def get_components(self):
        from types import SimpleNamespace

        from resyncer_core.audio import load_soundtrack
        from resyncer_core.video import probe_video, read_frames

        info = probe_video(self.path)
        images = torch_from_uint8(read_frames(self.path))
        audio = None
        if info.has_audio:
            waveform, rate = load_soundtrack(self.path)
            audio = {"waveform": torch_from_float(waveform)[None], "sample_rate": rate}
        return SimpleNamespace(images=images, audio=audio, frame_rate=info.frame_rate, metadata=None)

    def save_to(self, path, format=None, codec=None, metadata=None) -> None:  # noqa: A002  ComfyUI's signature
        import shutil

        shutil.copyfile(self.path, path)


class FramesVideo:
    """A VIDEO held as frames (IMAGE [T,H,W,3] float 0..1, optional AUDIO, frame rate), for
    runs without ComfyUI: the methods of ComfyUI's VideoFromComponents the pack uses."""

    def __init__(self, images, audio, frame_rate):
        from types import SimpleNamespace

        self.components = SimpleNamespace(images=images, audio=audio, frame_rate=frame_rate, metadata=None)

    def get_components(self):
        return self.components

    def get_frame_rate(self):
        return self.components.frame_rate

    def get_dimensions(self) -> tuple[int, int]:
        return int(self.components.images.shape[2]), int(self.components.images.shape[1])

    def save_to(self, path, format=None, codec=None, metadata=None) -> None:  # noqa: A002  ComfyUI's signature
        from resyncer_core.video import VideoWriter

        images, audio = self.components.images, self.components.audio
        soundtrack = None
        if audio is not None:
            soundtrack = (audio["waveform"][0].cpu().numpy(), int(audio["sample_rate"]))
        with VideoWriter(path, self.components.frame_rate, tuple(images.shape[1:3]), audio=soundtrack) as writer:
            for start in range(0, len(images), 32):
                frames = images[start:start + 32].cpu().numpy()
                writer.write(np.clip(np.round(frames[..., :3] * 255.0), 0, 255).astype(np.uint8))

    def get_stream_source(self) -> str:
        folder = temp_directory()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ReSyncer_frames_{uuid.uuid4().hex[:10]}.mp4"
        self.save_to(path)
        return str(path)


def video_from_frames(images, audio, frame_rate):
    """A VIDEO value of frames in memory: ComfyUI's VideoFromComponents inside ComfyUI, else a
    FramesVideo."""
    module = _comfy_module("comfy_api.latest")
    if module is not None and hasattr(module, "InputImpl") and hasattr(module, "Types"):
        components = module.Types.VideoComponents(images=images, audio=audio, frame_rate=frame_rate)
        return module.InputImpl.VideoFromComponents(components)
    return FramesVideo(images, audio, frame_rate)


def torch_from_uint8(frames: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).to(torch.float32).div_(255.0)


def torch_from_float(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def video_from_file(path: Path):
    """A VIDEO value for the file at `path`: ComfyUI's VideoFromFile inside ComfyUI (so core
    Save Video / Get Video Components take it), else a FileVideo."""
    module = _comfy_module("comfy_api.latest")
    if module is not None and hasattr(module, "InputImpl"):
        return module.InputImpl.VideoFromFile(str(path))
    return FileVideo(path)


def video_file_path(video) -> Path | None:
    """The file a VIDEO value reads from, None for one held in memory (frames, bytes), without
    decoding or encoding anything."""
    from resyncer_core.errors import ResyncerInputError

    if not hasattr(video, "get_components"):
        raise ResyncerInputError("the video input is not a VIDEO value; connect a Load Video node's VIDEO output")
    if isinstance(video, FileVideo):
        return video.path
    module = _comfy_module("comfy_api.latest")
    file_class = getattr(getattr(module, "InputImpl", None), "VideoFromFile", None)
    if file_class is not None and isinstance(video, file_class):
        source = video.get_stream_source()
        if isinstance(source, (str, os.PathLike)):
            return Path(source)
    return None


def video_source_path(video, purpose: str = "video") -> Path:
    """A file path to decode a VIDEO from: its own file when it has one, else (an in-memory or
    component video) an H.264 copy in the temp folder."""
    path = video_file_path(video)
    if path is not None:
        return path
    source = video.get_stream_source()
    folder = temp_directory()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ReSyncer_{purpose}_{uuid.uuid4().hex[:10]}.mp4"
    source.seek(0)
    path.write_bytes(source.read())
    return path


def available_memory_bytes() -> int | None:
    """Memory the process could still take (MemAvailable on Linux, free pages elsewhere),
    None when the system does not say."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


# ------------------------------------------------------------------------------ progress & interrupts

class Progress:
    """A progress bar over `total` steps: ComfyUI's ProgressBar inside ComfyUI, else the
    runner's listener (resyncer_core.graph.context)."""

    def __init__(self, total: int, node_id: str | None = None):
        self.total = max(int(total), 1)
        self.current = 0
        self.node_id = node_id
        self._bar = None
        utils = _comfy_module("comfy.utils")
        if utils is not None and hasattr(utils, "ProgressBar"):
            self._bar = utils.ProgressBar(self.total, node_id=node_id) if node_id else utils.ProgressBar(self.total)

    def update_absolute(self, value: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(int(total), 1)
        self.current = min(int(value), self.total)
        if self._bar is not None:
            self._bar.update_absolute(self.current, self.total)
        else:
            run_context.report_progress(self.current, self.total, self.node_id)

    def update(self, steps: int = 1) -> None:
        self.update_absolute(self.current + steps)


def check_interrupt() -> None:
    """Raises if the user asked to stop: ComfyUI's InterruptProcessingException inside
    ComfyUI, else resyncer_core.graph.context.ProcessingInterrupted."""
    management = model_management_module()
    if management is not None and hasattr(management, "throw_exception_if_processing_interrupted"):
        management.throw_exception_if_processing_interrupted()
    run_context.raise_if_interrupted()


def interrupt_requested() -> bool:
    management = model_management_module()
    if management is not None and hasattr(management, "processing_interrupted"):
        with contextlib.suppress(Exception):
            if management.processing_interrupted():
                return True
    return run_context.interrupt_requested()


class StageProgress:
    """Callbacks for resyncer_core pipeline stages: progress(stage, done, total) drives one
    progress bar (a new bar whenever the stage or its total changes) and should_cancel()
    raises the interrupt exception as soon as the user asks to stop."""

    def __init__(self, node_id: str | None = None):
        self.node_id = node_id
        self._bar: Progress | None = None
        self._stage: tuple[str, int] | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        if self._bar is None or self._stage != (stage, total):
            self._bar, self._stage = Progress(total, self.node_id), (stage, total)
        self._bar.update_absolute(done)

    def should_cancel(self) -> bool:
        check_interrupt()
        return False

    def callbacks(self):
        from resyncer_core.stages.progress import PipelineCallbacks

        return PipelineCallbacks(progress=self.progress, should_cancel=self.should_cancel)


def raise_interrupted() -> None:
    """Re-raise a pipeline cancellation as the interrupt the host understands."""
    check_interrupt()
    raise run_context.ProcessingInterrupted("processing was interrupted")


# ------------------------------------------------------------------------------ devices & memory

def torch_device(choice: str = "auto"):
    """The device to compute on: an explicit choice, else the runner's, else ComfyUI's, else
    cuda when available, else cpu."""
    import torch

    from resyncer_core.errors import ResyncerInputError

    if choice and choice != "auto":
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise ResyncerInputError(f"device {choice!r} was chosen but CUDA is not available; pick cpu or auto")
        return torch.device(choice)
    configured = run_context.current().device
    if configured:
        return torch.device(configured)
    management = model_management_module()
    if management is not None and hasattr(management, "get_torch_device"):
        with contextlib.suppress(Exception):
            return torch.device(management.get_torch_device())
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device():
    import torch

    management = model_management_module()
    if management is not None and hasattr(management, "unet_offload_device"):
        with contextlib.suppress(Exception):
            return torch.device(management.unet_offload_device())
    return torch.device("cpu")


def soft_empty_cache() -> None:
    management = model_management_module()
    if management is not None and hasattr(management, "soft_empty_cache"):
        management.soft_empty_cache()
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelCache:
    """Loaded models by key (path, mtime, device choice), least recently used first out.
    Models live on the offload device (CPU) between runs; `on_device` moves one to the compute
    device for the duration of a node's work. `unload_all` is the unload hook."""

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._models: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, loader: Callable[[], object]):
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = loader()
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model

    def unload_all(self) -> None:
        with self._lock:
            self._models.clear()
        soft_empty_cache()

    def __len__(self) -> int:
        return len(self._models)


MODEL_CACHE = ModelCache()


def unload_models() -> None:
    """Drop every cached model and release cached GPU memory."""
    MODEL_CACHE.unload_all()


def file_key(path: Path) -> tuple:
    try:
        stat = path.stat()
        return (str(path.resolve()), stat.st_mtime, stat.st_size)
    except OSError:
        return (str(path), 0.0, 0)


@contextlib.contextmanager
def on_device(*modules, device=None) -> Iterator[object]:
    """Moves torch modules to `device` (default: torch_device()) for the block and back to the
    offload device after it (also on error or interrupt), then frees cached GPU memory."""
    import torch

    target = torch.device(device) if device is not None else torch_device()
    offload = offload_device()
    movable = [m for m in modules if isinstance(m, torch.nn.Module)]
    for module in movable:
        module.to(target)
    try:
        yield target
    finally:
        if target != offload:
            for module in movable:
                module.to(offload)
            soft_empty_cache()


def node_timer() -> Callable[[], float]:
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
