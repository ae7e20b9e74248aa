"""Socket conventions shared by every ReSyncer node: type names, categories, common inputs and
the conversions between ComfyUI's IMAGE/MASK/AUDIO and what resyncer_core takes.

No model math here: only layout changes (channel order, value range, dtype).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

CATEGORY = "ReSyncer"

# Pack socket types (DESIGN §5).
AUDIO_ENCODER = "RESYNCER_AUDIO_ENCODER"
AUDIO_FEATURES = "RESYNCER_AUDIO_FEATURES"
FACE_TRACK = "RESYNCER_FACE_TRACK"
SYNCFORMER = "RESYNCER_SYNCFORMER"
STYLE = "RESYNCER_STYLE"
MESHES = "RESYNCER_MESHES"
GENERATOR = "RESYNCER_GENERATOR"
IDENTITY = "RESYNCER_IDENTITY"
PACK_TYPES = (AUDIO_ENCODER, AUDIO_FEATURES, FACE_TRACK, SYNCFORMER, STYLE, MESHES, GENERATOR, IDENTITY)
CORE_TYPES = ("IMAGE", "MASK", "AUDIO", "VIDEO", "INT", "FLOAT", "STRING", "BOOLEAN")

DEFAULT_FPS = 25.0  # (paper)
MAX_FRAMES = 1_000_000


def category(sub: str) -> str:
    return f"{CATEGORY}/{sub}"


def fps_input(tooltip: str = "Video frame rate in frames per second; audio features and meshes are made at exactly "
                              "one per video frame (25 in the paper).") -> tuple:
    return ("FLOAT", {"default": DEFAULT_FPS, "min": 1.0, "max": 240.0, "step": 0.001, "tooltip": tooltip})


def device_input() -> tuple:
    from .comfy_adapter import DEVICE_CHOICES

    return (DEVICE_CHOICES, {"default": "auto", "tooltip": "Where the model runs: auto picks ComfyUI's device "
                                                          "(or CUDA when available), else the named one."})


def batch_size_input(default: int = 8) -> tuple:
    return ("INT", {"default": default, "min": 1, "max": 256, "step": 1,
                    "tooltip": "Crops per generator call; lower it when the GPU runs out of memory. "
                               "An interrupt takes effect between batches."})


def input_verdict(check) -> bool | str:
    """What VALIDATE_INPUTS returns: True when `check()` passes, else the one-line reason it
    raised (ResyncerInputError), so a bad file fails before the graph runs."""
    from resyncer_core.errors import ResyncerInputError

    try:
        check()
    except ResyncerInputError as error:
        return str(error)
    return True


def with_node_info(result: tuple, **info) -> dict:
    """A node's return value carrying `info` to the frontend extension (web/resyncer.js): its
    "warning" is shown on the node, so a fallback is seen where it happened, not only in the
    server log. Entries that are None are left out."""
    return {"ui": {"resyncer": [{key: value for key, value in info.items() if value is not None}]}, "result": result}


def precision_input() -> tuple:
    from resyncer_core.models.precision import PRECISIONS

    return (list(PRECISIONS), {"default": "fp32", "tooltip": "Generator arithmetic: fp32, or bf16/fp16 autocast "
                                                               "(faster on recent GPUs and CPUs, slightly different pixels)."})


# ------------------------------------------------------------------------------ images

def image_to_uint8(images: torch.Tensor) -> np.ndarray:
    """ComfyUI IMAGE [T,H,W,C] float 0..1 → uint8 numpy [T,H,W,3]."""
    array = images.detach().cpu().float().numpy() if torch.is_tensor(images) else np.asarray(images, np.float32)
    if array.ndim == 3:
        array = array[None]
    return np.clip(np.round(array[..., :3] * 255.0), 0, 255).astype(np.uint8)


def uint8_to_image(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T,H,W,3] → ComfyUI IMAGE float32 0..1."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(torch.float32).div_(255.0)


def image_to_crops(images: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE [T,H,W,3] 0..1 → core crops [T,3,H,W] in −1..1."""
    if images.dim() == 3:
        images = images[None]
    return images[..., :3].permute(0, 3, 1, 2).float() * 2.0 - 1.0


def crops_to_image(crops: torch.Tensor) -> torch.Tensor:
    """Core crops [T,3,H,W] in −1..1 → ComfyUI IMAGE [T,H,W,3] 0..1 on the CPU."""
    return ((crops.detach().float().cpu().clamp(-1, 1) + 1.0) / 2.0).permute(0, 2, 3, 1).contiguous()


def mask_to_comfy(mask: torch.Tensor) -> torch.Tensor:
    """[T,1,H,W] or [T,H,W] → ComfyUI MASK [T,H,W] float 0..1 on the CPU."""
    mask = mask.detach().float().cpu()
    if mask.dim() == 4:
        mask = mask[:, 0]
    return mask.clamp(0, 1).contiguous()


# ------------------------------------------------------------------------------ audio

def audio_parts(audio: Mapping) -> tuple[np.ndarray, int]:
    """(float32 waveform [channels, samples], sample rate) of a ComfyUI AUDIO: any Mapping with
    "waveform" [B,C,S] (or [C,S]) and "sample_rate", so VideoHelperSuite's lazily decoded audio
    works too; the first item of a batch."""
    from resyncer_core.errors import ResyncerInputError

    if not isinstance(audio, Mapping) or "waveform" not in audio or "sample_rate" not in audio:
        raise ResyncerInputError("audio input is not a ComfyUI AUDIO value ({'waveform', 'sample_rate'}); connect an audio loader")
    waveform = audio["waveform"]
    waveform = waveform.detach().cpu().float().numpy() if torch.is_tensor(waveform) else np.asarray(waveform, np.float32)
    if waveform.ndim == 3:
        waveform = waveform[0]
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or waveform.shape[-1] == 0:
        raise ResyncerInputError(f"audio waveform has shape {list(waveform.shape)}; an AUDIO needs [batch, channels, samples] with samples")
    return np.ascontiguousarray(waveform, dtype=np.float32), int(audio["sample_rate"])


def audio_to_mono(audio: Mapping) -> np.ndarray:
    """A ComfyUI AUDIO → mono float32 at 16 kHz, what the audio encoders hear (channels averaged)."""
    from resyncer_core.audio import load_audio

    waveform, sample_rate = audio_parts(audio)
    return load_audio(waveform, sample_rate)


def channels_to_audio(waveform: np.ndarray, sample_rate: int) -> dict:
    """float32 [S] or [C,S] → ComfyUI AUDIO {"waveform": [1,C,S], "sample_rate"}."""
    waveform = np.ascontiguousarray(waveform, dtype=np.float32)
    if waveform.ndim == 1:
        waveform = waveform[None]
    return {"waveform": torch.from_numpy(waveform)[None], "sample_rate": int(sample_rate)}


# ------------------------------------------------------------------------------ models on sockets

class LoadedModel:
    """What a loader node outputs: the model (kept on the offload device, normally the CPU,
    between runs), where it should run ("auto", "cpu", "cuda", ...) and where it came from.
    Consumers run it inside `comfy_adapter.on_device(handle.model, device=handle.torch_device())`."""

    def __init__(self, model, device_choice: str, source: str, kind: str):
        self.model, self.device_choice, self.source, self.kind = model, device_choice, source, kind

    def torch_device(self):
        from .comfy_adapter import torch_device

        return torch_device(self.device_choice)

    def __repr__(self) -> str:
        return f"LoadedModel({self.kind} from {self.source!r} on {self.device_choice})"


def load_checkpoint_cached(kind: str, name: str, device_choice: str) -> LoadedModel:
    """The `kind` checkpoint `name` from the resyncer model folders, loaded once per file
    version (comfy_adapter.MODEL_CACHE) and kept on the offload device. The first load tunes
    the process's allocator (resyncer_core.allocator): the nodes' start-up, not their import."""
    from resyncer_core.allocator import tune_memory_allocator
    from resyncer_core.models.checkpoint import load_checkpoint

    from . import comfy_adapter as adapter

    tune_memory_allocator()
    adapter.torch_device(device_choice)  # a bad device choice fails now, not in a later node
    path = adapter.resolve_model(adapter.RESYNCER_FOLDER, name)
    model = adapter.MODEL_CACHE.get(("checkpoint", kind, adapter.file_key(path)),
                                    lambda: load_checkpoint(path, kind=kind, device=adapter.offload_device())[0])
    return LoadedModel(model, device_choice, str(path), kind)


def require_handle(value, kind: str, socket: str) -> LoadedModel:
    from resyncer_core.errors import ResyncerInputError

    if not isinstance(value, LoadedModel) or value.kind != kind:
        raise ResyncerInputError(f"{socket} must come from a ReSyncer {kind} loader node")
    return value


def interrupt_callback(progress):
    """An on_batch/on_window(done, total) callback for resyncer_core.stages.functions: moves the
    progress bar and raises the host's interrupt exception when the user asked to stop."""
    from .comfy_adapter import check_interrupt

    def callback(done: int, total: int) -> None:
        progress.update_absolute(done, total)
        check_interrupt()

    return callback
