"""Pipelines: lip-sync, video-driven lip-sync, style transfer and face swap.

The steps themselves are tensor-in/tensor-out functions in `resyncer_core.stages` (what
ComfyUI nodes and the trainer call); `engine` streams a video file through the same functions chunk by chunk; `lipsync`, `drive`
and `swap` set up what the engine draws. Names resolve lazily so importing the package
loads nothing heavy.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "PipelineCallbacks": "..stages.progress",
    "PipelineCancelled": "..stages.progress",
    "PipelineResult": ".engine",
    "RenderOptions": ".engine",
    "PipelineModels": "..stages.model_files",
    "load_pipeline_models": "..stages.model_files",
    "resolve_models_dir": "..stages.model_files",
    "lipsync_video": ".lipsync",
    "drive_video": ".drive",
    "swap_video": ".swap",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
