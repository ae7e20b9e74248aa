"""Helpers shared by the node, graph, workflow and web tests.

- `load_pack_as_comfyui()` imports the repository the way ComfyUI's load_custom_node does
  (spec_from_file_location on <repo>/__init__.py with the folder as search location), never as
  a top-level `nodes` package.
- `install_comfy_stubs(monkeypatch, base)` puts the stand-ins in this folder into sys.modules as
  `folder_paths`, `comfy`, `comfy.utils`, `comfy.model_management` for one test.
- `tiny_models()` / `synthetic_clip()` make (once per process) tiny random models with
  `resyncer models init --preset tiny` and a short 256×256 talking clip.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
_STUB_FILES = {
    "folder_paths": HERE / "folder_paths.py",
    "comfy": HERE / "comfy" / "__init__.py",
    "comfy.utils": HERE / "comfy" / "utils.py",
    "comfy.model_management": HERE / "comfy" / "model_management.py",
}
_CACHE: dict[str, Path] = {}


def load_pack_as_comfyui(module_name: str | None = None):
    """The pack module, imported by path exactly as ComfyUI imports a custom-node folder."""
    path = str(REPO)
    name = module_name or path.replace(".", "_x_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_stub(name: str, path: Path):
    is_package = path.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if is_package else None)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install_comfy_stubs(monkeypatch, base: Path) -> dict:
    """Fresh stand-ins (folder_paths rooted at `base`) in sys.modules for the current test."""
    modules = {}
    for name, path in _STUB_FILES.items():
        modules[name] = _load_stub(name, path)
        monkeypatch.setitem(sys.modules, name, modules[name])
    monkeypatch.setattr(modules["comfy"], "utils", modules["comfy.utils"], raising=False)
    monkeypatch.setattr(modules["comfy"], "model_management", modules["comfy.model_management"], raising=False)
    modules["folder_paths"].set_base(str(base))
    return modules


def _workdir() -> Path:
    if "root" not in _CACHE:
        _CACHE["root"] = Path(tempfile.mkdtemp(prefix="resyncer-nodes-tests-"))
    return _CACHE["root"]


def tiny_models() -> Path:
    """A folder of tiny random-initialised models (made once per process)."""
    if "models" not in _CACHE:
        from resyncer_core.models.presets import init_models

        folder = _workdir() / "models"
        init_models("tiny", folder, seed=0)
        _CACHE["models"] = folder
    return _CACHE["models"]


def synthetic_clip(seconds: float = 2.0, seed: int = 0, size: int = 256) -> Path:
    """A synthetic talking clip with voice, size×size at 25 fps (made once per argument set)."""
    key = f"clip-{seconds}-{seed}-{size}"
    if key not in _CACHE:
        from resyncer_core.synth import write_synthetic_clip

        path = _workdir() / f"{key}.mp4"
        write_synthetic_clip(path, seconds, 25, (size, size), seed=seed, preset="ultrafast")
        _CACHE[key] = path
    return _CACHE[key]
