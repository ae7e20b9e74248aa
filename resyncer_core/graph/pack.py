"""Load a ComfyUI node pack's registry from its folder, by file path, the way ComfyUI does.

The pack folder is imported as a package from `<folder>/__init__.py` with the folder as its
submodule search location, so its relative imports (`from .nodes import ...`) work and its
`nodes/` folder never becomes a top-level module named `nodes` (ComfyUI has its own). Nothing
is imported until `load_node_registry` is called.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from ..errors import ResyncerInputError

PACK_DIR_ENV = "RESYNCER_PACK_DIR"


def default_pack_dir() -> Path | None:
    """$RESYNCER_PACK_DIR, else the folder holding this library when it is a pack checkout
    (the repository root has __init__.py and nodes/ beside resyncer_core/)."""
    configured = os.environ.get(PACK_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "__init__.py").is_file() and (candidate / "nodes").is_dir():
        return candidate
    return None


def _module_name(pack_dir: Path) -> str:
    return "resyncer_pack_" + re.sub(r"\W", "_", pack_dir.name)


def load_pack(pack_dir: str | os.PathLike | None = None) -> ModuleType:
    """Imports the pack package from `pack_dir` (default: default_pack_dir()) and returns it;
    a pack already imported from the same folder is returned as is."""
    folder = Path(pack_dir).expanduser() if pack_dir is not None else default_pack_dir()
    if folder is None:
        raise ResyncerInputError(
            f"cannot find the ReSyncer node pack folder; pass --pack DIR or set {PACK_DIR_ENV}")
    folder = folder.resolve()
    entry = folder / "__init__.py"
    if not entry.is_file():
        raise ResyncerInputError(f"{folder} is not a node pack folder (it has no __init__.py); pass the pack's folder")
    name = _module_name(folder)
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == entry:
        return loaded
    spec = importlib.util.spec_from_file_location(name, entry, submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_node_registry(pack_dir: str | os.PathLike | None = None) -> dict[str, type]:
    """NODE_CLASS_MAPPINGS of the pack in `pack_dir`, plus its CORE_STAND_INS (stand-ins for the
    ComfyUI core nodes its workflows use, e.g. LoadImage) where the mappings have no such id."""
    module = load_pack(pack_dir)
    mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
    if not isinstance(mappings, dict):
        raise ResyncerInputError(f"the pack in {Path(module.__file__).parent} exports no NODE_CLASS_MAPPINGS")
    return {**getattr(module, "CORE_STAND_INS", {}), **mappings}
