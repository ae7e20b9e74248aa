"""The pack loads the way ComfyUI loads it, registers every node, and every node's declaration
passes a check that mirrors what ComfyUI's validator and frontend rely on."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys

import pytest
from comfy_stubs.harness import REPO, install_comfy_stubs, load_pack_as_comfyui

CORE_TYPES = {"IMAGE", "MASK", "AUDIO", "VIDEO", "INT", "FLOAT", "STRING", "BOOLEAN"}
PACK_TYPES = {"RESYNCER_AUDIO_ENCODER", "RESYNCER_AUDIO_FEATURES", "RESYNCER_FACE_TRACK", "RESYNCER_SYNCFORMER",
              "RESYNCER_STYLE", "RESYNCER_MESHES", "RESYNCER_GENERATOR", "RESYNCER_IDENTITY"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
KNOWN_OPTIONS = {"default", "min", "max", "step", "round", "tooltip", "multiline", "display", "forceInput",
                 "lazy", "placeholder", "dynamicPrompts", "label_on", "label_off", "image_upload", "defaultInput",
                 "video_upload", "audio_upload", "control_after_generate"}
# Combos over the input folder may be empty, as core Load Video / Load Audio are: the upload button fills them.
UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload")
HIDDEN_VALUES = {"UNIQUE_ID", "PROMPT", "EXTRA_PNGINFO", "DYNPROMPT"}
# Node ids of ComfyUI's own nodes that a pack id must never equal (ComfyUI drops the pack's).
CORE_NODE_IDS = {"LoadAudio", "SaveAudio", "PreviewAudio", "LoadVideo", "SaveVideo", "CreateVideo", "GetVideoComponents",
                 "LoadImage", "SaveImage", "PreviewImage", "LoadImageMask", "ImageScale", "CheckpointLoaderSimple"}
# DESIGN §5 rows, plus the headless I/O nodes.
EXPECTED = {
    "ReSyncerLoadWav2Vec2": "Load Audio Encoder", "ReSyncerAudioFeatures": "Audio Features",
    "ReSyncerTrackFace": "Track Face", "ReSyncerStyleReference": "Style Reference", "ReSyncerStylePreset": "Style Preset",
    "ReSyncerLoadSyncFormer": "Load Style-SyncFormer", "ReSyncerSyncFormer": "Style-SyncFormer",
    "ReSyncerMeshesFromVideo": "Meshes From Video", "ReSyncerMeshOverlay": "Mesh Overlay",
    "ReSyncerLoadGenerator": "Load ReSync Generator", "ReSyncerGenerator": "ReSync Generator",
    "ReSyncerMeshWarp": "Mesh Warp",
    "ReSyncerFaceIdentity": "Face Identity", "ReSyncerFaceSwapInject": "Face Swap Inject",
    "ReSyncerBlend": "Blend", "ReSyncerPersonalize": "Personalize",
    "ReSyncerLoadVideo": "Load Video", "ReSyncerLoadAudio": "Load Audio", "ReSyncerSaveVideo": "Save Video",
    "ReSyncerFitLength": "Fit Length", "ReSyncerLipSyncStreaming": "Lip-sync (streaming)",
}


@pytest.fixture(scope="module")
def pack():
    return load_pack_as_comfyui()


def comfy_style_problems(node_id: str, node_class: type) -> list[str]:
    """What ComfyUI (validate_inputs, the /object_info route and the frontend) would trip over."""
    problems = []
    declared = node_class.INPUT_TYPES()
    if not isinstance(declared, dict) or set(declared) - {"required", "optional", "hidden"}:
        return [f"INPUT_TYPES must be a dict with required/optional/hidden, got {declared!r}"]
    function = getattr(node_class, getattr(node_class, "FUNCTION", ""), None)
    if not callable(function):
        problems.append(f"FUNCTION {getattr(node_class, 'FUNCTION', None)!r} is not a method")
        parameters = {}
    else:
        parameters = inspect.signature(function).parameters
    for category in ("required", "optional"):
        for name, spec in (declared.get(category) or {}).items():
            where = f"{category} input {name!r}"
            if not isinstance(spec, tuple) or not 1 <= len(spec) <= 2:
                problems.append(f"{where}: spec must be (TYPE,) or (TYPE, options), got {spec!r}")
                continue
            kind = spec[0]
            options = spec[1] if len(spec) == 2 else {}
            if not isinstance(options, dict):
                problems.append(f"{where}: options must be a dict")
                continue
            if isinstance(kind, list):
                if not (kind or any(options.get(o) for o in UPLOAD_OPTIONS)) or not all(isinstance(c, str) for c in kind):
                    problems.append(f"{where}: a combo must be a non-empty list of strings")
                if "default" in options and options["default"] not in kind:
                    problems.append(f"{where}: default {options['default']!r} is not one of the choices")
            elif isinstance(kind, str):
                if kind not in CORE_TYPES | PACK_TYPES:
                    problems.append(f"{where}: unknown socket type {kind!r}")
            else:
                problems.append(f"{where}: type must be a string or a list (combo), got {type(kind).__name__}")
            unknown = set(options) - KNOWN_OPTIONS
            if unknown:
                problems.append(f"{where}: unknown options {sorted(unknown)}")
            if not str(options.get("tooltip", "")).strip():
                problems.append(f"{where}: has no tooltip")
            kind_name = kind if isinstance(kind, str) else "COMBO"
            if kind_name in WIDGET_TYPES and category == "required" and "default" not in options:
                problems.append(f"{where}: a widget needs a default")
            if kind_name in ("INT", "FLOAT"):
                low, high, default = options.get("min"), options.get("max"), options.get("default")
                if low is not None and high is not None and low > high:
                    problems.append(f"{where}: min {low} > max {high}")
                if default is not None and ((low is not None and default < low) or (high is not None and default > high)):
                    problems.append(f"{where}: default {default} outside [{low}, {high}]")
                if kind_name == "INT" and any(not isinstance(options.get(k, 0), int) for k in ("default", "min", "max", "step")):
                    problems.append(f"{where}: INT bounds must be integers")
                if "step" in options and not options["step"] > 0:
                    problems.append(f"{where}: step must be positive")
            if kind_name == "BOOLEAN" and not isinstance(options.get("default", False), bool):
                problems.append(f"{where}: BOOLEAN default must be a bool")
            if kind_name == "STRING" and not isinstance(options.get("default", ""), str):
                problems.append(f"{where}: STRING default must be a string")
            if parameters and name not in parameters and not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
                problems.append(f"{where}: {node_class.FUNCTION}() has no parameter {name!r}")
            if parameters and category == "optional" and name in parameters and parameters[name].default is inspect.Parameter.empty:
                problems.append(f"{where}: optional inputs need a default in {node_class.FUNCTION}()")
    for name, value in (declared.get("hidden") or {}).items():
        if value not in HIDDEN_VALUES:
            problems.append(f"hidden input {name!r}: unknown hidden value {value!r}")
        elif parameters and name not in parameters:
            problems.append(f"hidden input {name!r}: {node_class.FUNCTION}() has no parameter for it")
    returns = getattr(node_class, "RETURN_TYPES", None)
    if not isinstance(returns, tuple) or not all(isinstance(t, str) for t in returns):
        problems.append(f"RETURN_TYPES must be a tuple of type names, got {returns!r}")
    else:
        unknown = [t for t in returns if t not in CORE_TYPES | PACK_TYPES]
        if unknown:
            problems.append(f"RETURN_TYPES has unknown types {unknown}")
        for attribute in ("RETURN_NAMES", "OUTPUT_TOOLTIPS"):
            value = getattr(node_class, attribute, None)
            if value is not None and (not isinstance(value, tuple) or len(value) != len(returns)):
                problems.append(f"{attribute} must be a tuple as long as RETURN_TYPES")
        if not returns and not getattr(node_class, "OUTPUT_NODE", False):
            problems.append("a node without outputs must be an OUTPUT_NODE")
    if not str(getattr(node_class, "CATEGORY", "")).startswith("ReSyncer/"):
        problems.append(f"CATEGORY {getattr(node_class, 'CATEGORY', None)!r} is not under ReSyncer/")
    if not str(getattr(node_class, "DESCRIPTION", "")).strip():
        problems.append("has no DESCRIPTION")
    if getattr(node_class, "OUTPUT_NODE", False) not in (True, False):
        problems.append("OUTPUT_NODE must be a bool")
    if not node_id.startswith("ReSyncer") or node_id in CORE_NODE_IDS:
        problems.append("node id must carry the ReSyncer prefix and differ from ComfyUI's core ids")
    return problems


def test_loading_like_comfyui_registers_every_node(pack):
    all_nodes = pack.nodes.ALL_NODE_CLASSES
    assert set(all_nodes) == set(EXPECTED)
    disabled = pack.nodes.DISABLED_NODES
    # Only a node whose requirement is really missing may be left out, and nothing else.
    assert set(pack.NODE_CLASS_MAPPINGS) == set(all_nodes) - set(disabled)
    for node_id, requirement in disabled.items():
        assert pack.nodes.missing_requirement(all_nodes[node_id]) == requirement
    assert set(disabled) <= {"ReSyncerPersonalize"}  # the trainer is the only optional piece today
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) == set(pack.NODE_CLASS_MAPPINGS)
    for node_id, name in pack.NODE_DISPLAY_NAME_MAPPINGS.items():
        assert name == f"ReSyncer {EXPECTED[node_id]}"
    assert pack.WEB_DIRECTORY == "./web"
    assert (REPO / "web" / "resyncer.js").is_file()


@pytest.mark.parametrize("node_id", sorted(EXPECTED))
def test_node_declaration_is_valid_for_comfyui(pack, node_id):
    assert comfy_style_problems(node_id, pack.nodes.ALL_NODE_CLASSES[node_id]) == []


def test_output_nodes_and_previews(pack):
    classes = pack.nodes.ALL_NODE_CLASSES
    assert [n for n, c in classes.items() if getattr(c, "OUTPUT_NODE", False)] == ["ReSyncerSaveVideo"]
    for node_id in ("ReSyncerTrackFace", "ReSyncerMeshOverlay", "ReSyncerLoadVideo"):
        fps = classes[node_id].INPUT_TYPES()["required"].get("fps")
        if fps is not None:
            assert fps[0] == "FLOAT" and fps[1]["default"] == 25.0


IMPORT_PROBE = """
import importlib.util, json, sys
repo = sys.argv[1]
spec = importlib.util.spec_from_file_location(repo, repo + "/__init__.py", submodule_search_locations=[repo])
pack = importlib.util.module_from_spec(spec)
sys.modules[repo] = pack
spec.loader.exec_module(pack)
print(json.dumps({"nodes": len(pack.NODE_CLASS_MAPPINGS), "cached_models": len(pack.nodes.comfy_adapter.MODEL_CACHE),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                                    ("nodes", "comfy", "folder_paths", "transformers", "av", "PIL"))}))
"""


def test_pack_import_has_no_side_effects(tmp_path):
    """A fresh interpreter imports the pack as ComfyUI does: no model loaded, no ComfyUI module
    needed, our nodes/ folder never becomes the top-level `nodes`, nothing heavy imported."""
    done = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(REPO)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["nodes"] >= 16 and probe["cached_models"] == 0
    assert probe["modules"] == []
    assert list(tmp_path.iterdir()) == []  # no files written at import


def test_inside_comfyui_the_model_folders_are_registered(monkeypatch, tmp_path):
    stubs = install_comfy_stubs(monkeypatch, tmp_path)
    pack = load_pack_as_comfyui("resyncer_pack_under_stubs")
    try:
        folders = stubs["folder_paths"].folder_names_and_paths
        assert folders["resyncer"][0] == [str(tmp_path / "models" / "resyncer")]
        assert folders["wav2vec2"][0] == [str(tmp_path / "models" / "wav2vec2")]
        pack.nodes.comfy_adapter.register_model_folders()  # idempotent
        assert len(folders["resyncer"][0]) == 1
    finally:
        for name in [n for n in sys.modules if n.startswith("resyncer_pack_under_stubs")]:
            del sys.modules[name]


def test_a_node_with_a_missing_dependency_disables_itself_once(pack, monkeypatch, caplog):
    node_class = pack.nodes.ALL_NODE_CLASSES["ReSyncerBlend"]
    monkeypatch.setattr(node_class, "REQUIRES", ("resyncer_no_such_module",), raising=False)
    monkeypatch.setattr(pack.nodes, "_REPORTED", set())
    with caplog.at_level(logging.WARNING, logger="resyncer.nodes"):
        classes, names, disabled = pack.nodes.build_mappings()
        pack.nodes.build_mappings()
    assert "ReSyncerBlend" not in classes and "ReSyncerBlend" not in names
    assert disabled["ReSyncerBlend"] == "resyncer_no_such_module"
    assert "ReSyncerTrackFace" in classes
    assert sum("ReSyncerBlend" in record.getMessage() for record in caplog.records) == 1


def test_registry_metadata_in_pyproject():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    comfy = project["tool"]["comfy"]
    repository = project["project"]["urls"]["Repository"]
    assert comfy["PublisherId"] and comfy["DisplayName"].startswith("ReSyncer")
    assert repository.startswith("https://github.com/")
    # The registry takes the icon as a URL: the raw file of this repository's web/icon.svg.
    raw = repository.replace("https://github.com/", "https://raw.githubusercontent.com/")
    assert comfy["Icon"].startswith(raw + "/") and (REPO / comfy["Icon"].split("/", 6)[-1]).is_file()
    assert all((REPO / folder).is_dir() for folder in comfy["includes"])
    ignored = (REPO / ".comfyignore").read_text(encoding="utf-8").split()
    assert {"tests/", "benchmarks/"} <= set(ignored)
    assert "web" not in comfy  # WEB_DIRECTORY serves web/; a `web` key would register it twice


def test_run_workflow_help_exits_zero(capsys):
    from resyncer_core.cli import main

    with pytest.raises(SystemExit) as done:
        main(["run-workflow", "--help"])
    assert done.value.code == 0 and "--server" in capsys.readouterr().out


def test_node_constants_match_the_library(pack):
    from resyncer_core.stages import functions as stages

    assert pack.nodes.style_reference.STYLE_FRAMES == stages.STYLE_FRAMES == 90
    assert pack.nodes.mesh_overlay.MASK_MODES == list(stages.MASK_MODES)
