"""Pipelines: lip-sync, video-driven lip-sync, style transfer and face swap.

`stages` holds the steps as tensor-in/tensor-out functions (what ComfyUI nodes call);
`engine` streams a video file through the same functions chunk by chunk; `lipsync`, `drive`
and `swap` set up what the engine draws. Names resolve lazily so importing the package
loads nothing heavy.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "PipelineCallbacks": ".progress",
    "PipelineCancelled": ".progress",
    "PipelineResult": ".engine",
    "RenderOptions": ".engine",
    "PipelineModels": ".models",
    "load_pipeline_models": ".models",
    "resolve_models_dir": ".models",
    "lipsync_video": ".lipsync",
    "drive_video": ".drive",
    "swap_video": ".swap",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
