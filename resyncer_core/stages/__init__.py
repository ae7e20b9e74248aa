"""Stage functions shared by the inference pipelines (`pipeline/`) and the trainer (`train/`).

`functions` holds the steps as tensor-in/tensor-out functions (crops, audio features, meshes,
overlay, generator, blend, identity); `tracking` tracks video files; `frame_source` reads
frame ranges; `model_files` finds and loads a models folder; `progress` carries progress,
cancellation and timing; `regions` maps crop boxes to frame windows. pipeline/ and train/ both
build on these and never import each other. Names resolve lazily so importing the package
loads nothing heavy.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "PipelineCallbacks": ".progress",
    "PipelineCancelled": ".progress",
    "StageClock": ".progress",
    "FrameSource": ".frame_source",
    "PipelineModels": ".model_files",
    "load_pipeline_models": ".model_files",
    "resolve_models_dir": ".model_files",
    "track_video": ".tracking",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
