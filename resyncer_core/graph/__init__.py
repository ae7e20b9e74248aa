"""Headless runner for API-format workflow JSON: in-process (executor.py) against any registry
of ComfyUI-style node classes, or on a running ComfyUI server (remote.py).

Generic on purpose: nothing here imports ComfyUI or the node pack; `pack.load_node_registry`
imports a pack from its folder by file path when a run needs it.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "GraphExecutor": ".executor",
    "ExecutionResult": ".executor",
    "GraphValidationError": ".executor",
    "GraphInterrupted": ".executor",
    "NodeExecutionError": ".executor",
    "ComfyClient": ".remote",
    "RemoteError": ".remote",
    "load_node_registry": ".pack",
    "load_pack": ".pack",
    "load_workflow": ".prompt",
    "apply_overrides": ".prompt",
    "ProcessingInterrupted": ".context",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
