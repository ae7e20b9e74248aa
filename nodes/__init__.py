"""ReSyncer ComfyUI nodes: thin adapters from sockets to `resyncer_core` calls.

One module per stage; each exports NODE_CLASSES = {node id: (class, display name)}. Node ids
carry the `ReSyncer` prefix (ComfyUI drops a pack node whose id equals a core one); display
names read "ReSyncer <stage>". A node class may declare REQUIRES = ("module", "module:attr",
...): when one is missing, that node is left out (logged once) and the rest of the pack loads.

Importing this package loads no model: at most it registers the "resyncer" and "wav2vec2"
model folders with ComfyUI's folder_paths when running inside ComfyUI.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from pathlib import Path


def _ensure_resyncer_core() -> None:
    """ComfyUI installs a pack's requirements, not the pack itself: when `resyncer_core` is not
    installed (pip install -e <pack>), import the copy inside this pack folder under its own
    name, without putting the pack folder on sys.path (which would expose `nodes/`)."""
    if "resyncer_core" in sys.modules or importlib.util.find_spec("resyncer_core") is not None:
        return
    folder = Path(__file__).resolve().parents[1] / "resyncer_core"
    spec = importlib.util.spec_from_file_location("resyncer_core", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["resyncer_core"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["resyncer_core"]
        raise


_ensure_resyncer_core()

# The node modules need resyncer_core, hence after the bootstrap above.
from . import (
    audio,
    blend,
    comfy_adapter,
    core_stand_ins,
    face_swap,
    fit_length,
    generator,
    mesh_overlay,
    mesh_warp,
    meshes_from_video,
    personalize,
    streaming,
    style_reference,
    syncformer,
    track_face,
    video_io,
)

LOG = logging.getLogger("resyncer.nodes")
DISPLAY_PREFIX = "ReSyncer "

_MODULES = (video_io, fit_length, audio, track_face, style_reference, syncformer, meshes_from_video, mesh_overlay,
            generator, mesh_warp, face_swap, blend, personalize, streaming)

# Every node class the pack defines, registered or not: {node id: class}.
ALL_NODE_CLASSES: dict[str, type] = {}
ALL_DISPLAY_NAMES: dict[str, str] = {}
for _module in _MODULES:
    for _node_id, (_cls, _display) in _module.NODE_CLASSES.items():
        ALL_NODE_CLASSES[_node_id] = _cls
        ALL_DISPLAY_NAMES[_node_id] = DISPLAY_PREFIX + _display


def missing_requirement(node_class: type) -> str | None:
    """The first of node_class.REQUIRES that cannot be imported. Plain module names are only
    looked up (find_spec imports nothing but parent packages); "module:attr" imports the module."""
    for requirement in getattr(node_class, "REQUIRES", ()):
        module_name, _, attribute = requirement.partition(":")
        try:
            if not attribute:
                if importlib.util.find_spec(module_name) is None:
                    return requirement
                continue
            module = importlib.import_module(module_name)
        except (ImportError, ValueError):
            return requirement
        if not hasattr(module, attribute):
            return requirement
    return None


_REPORTED: set[str] = set()


def build_mappings() -> tuple[dict[str, type], dict[str, str], dict[str, str]]:
    """(NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, {disabled node id: missing requirement});
    each disabled node is logged once per process."""
    classes, names, disabled = {}, {}, {}
    for node_id, node_class in ALL_NODE_CLASSES.items():
        missing = missing_requirement(node_class)
        if missing is not None:
            disabled[node_id] = missing
            if node_id not in _REPORTED:
                _REPORTED.add(node_id)
                LOG.warning("ReSyncer: node %s is disabled because %s is not available", node_id, missing)
            continue
        classes[node_id] = node_class
        names[node_id] = ALL_DISPLAY_NAMES[node_id]
    return classes, names, disabled


comfy_adapter.register_model_folders()
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, DISABLED_NODES = build_mappings()
# ComfyUI core nodes the templates use, for runs without ComfyUI (never registered with it).
CORE_STAND_INS = dict(core_stand_ins.CORE_STAND_INS)

__all__ = ["ALL_NODE_CLASSES", "CORE_STAND_INS", "DISABLED_NODES", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
