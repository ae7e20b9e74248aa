"""The shared workflows: up to date with their description, only real node types and sockets,
links whose types match RETURN_TYPES / INPUT_TYPES, and UI and API files of the same graph."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import pytest
from comfy_stubs.harness import REPO, load_pack_as_comfyui, synthetic_clip, tiny_models

from resyncer_core.graph import context
from resyncer_core.graph.executor import GraphExecutor, types_compatible

UI_FOLDER = REPO / "example_workflows"
API_FOLDER = REPO / "api_workflows"
# API file stem → UI file stem (the title ComfyUI's template browser shows).
TEMPLATES = {
    "lipsync": "ReSyncer lip-sync",
    "lipsync_mesh_warp": "ReSyncer mesh-warp lip-sync",
    "lipsync_style_transfer": "ReSyncer style transfer",
    "video_driven": "ReSyncer video-driven",
    "face_swap_lipsync": "ReSyncer face swap",
    "personalize_lipsync": "ReSyncer personalize",
    "lipsync_streaming": "ReSyncer streaming lip-sync",
}
FLOWS = list(TEMPLATES)
# The folders ComfyUI's /api/workflow_templates lists (app/custom_node_manager.py).
TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")
WIDGETS = ("INT", "FLOAT", "STRING", "BOOLEAN")


@pytest.fixture(scope="module")
def classes():
    return load_pack_as_comfyui().nodes.ALL_NODE_CLASSES


def _specs(node_class) -> list[tuple[str, object]]:
    declared = node_class.INPUT_TYPES()
    return [(name, spec[0]) for category in ("required", "optional") for name, spec in (declared.get(category) or {}).items()]


def _is_widget(kind) -> bool:
    return isinstance(kind, list) or kind in WIDGETS


def ui_to_api(ui: dict, classes) -> dict:
    """What ComfyUI's frontend does on "Export (API)", written independently of the builder:
    widgets_values fill the widget inputs in declaration order, links become [id, slot]."""
    links = {link[0]: link for link in ui["links"]}
    api = {}
    for node in ui["nodes"]:
        node_class = classes[node["type"]]
        linked = {entry["name"]: links[entry["link"]] for entry in node["inputs"] if entry.get("link") is not None}
        values = iter(node["widgets_values"])
        inputs = {}
        for name, kind in _specs(node_class):
            value = next(values) if _is_widget(kind) else None
            if name in linked:
                inputs[name] = [str(linked[name][1]), linked[name][2]]
            elif _is_widget(kind):
                inputs[name] = value
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": node["title"]}}
    return api


def _ui(flow: str) -> dict:
    return json.loads((UI_FOLDER / f"{TEMPLATES[flow]}.json").read_text(encoding="utf-8"))


def _api(flow: str) -> dict:
    return json.loads((API_FOLDER / f"{flow}_api.json").read_text(encoding="utf-8"))


def test_committed_files_match_their_description():
    spec = importlib.util.spec_from_file_location("build_workflows", REPO / "tools" / "build_workflows.py")
    builder = importlib.util.module_from_spec(spec)
    sys.modules["build_workflows"] = builder  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(builder)
    finally:
        del sys.modules["build_workflows"]
    rendered = builder.render()
    assert sorted(rendered) == sorted([UI_FOLDER / f"{t}.json" for t in TEMPLATES.values()]
                                      + [API_FOLDER / f"{f}_api.json" for f in FLOWS])
    stale = [path.name for path, text in rendered.items() if path.read_text(encoding="utf-8") != text]
    assert stale == [], "run python tools/build_workflows.py"
    assert builder.main(["--check"]) == 0


def test_the_template_browser_lists_only_ui_workflows_each_with_a_thumbnail():
    """ComfyUI lists every *.json in these folders as a template; an API-format file there
    opens a blank canvas with a "Required at 'version'" alert."""
    from PIL import Image

    listed = [path for folder in TEMPLATE_FOLDERS for path in sorted((REPO / folder).glob("*.json"))]
    assert sorted(path.stem for path in listed) == sorted(TEMPLATES.values())
    for path in listed:
        assert json.loads(path.read_text(encoding="utf-8"))["version"] == 0.4, path.name
        with Image.open(path.with_suffix(".jpg")) as thumbnail:  # ComfyUI serves <name>.jpg as the card's image
            assert thumbnail.format == "JPEG" and thumbnail.width >= 256


def test_personalize_template_finishes_in_minutes_and_keeps_its_seed():
    (node,) = [n for n in _ui("personalize_lipsync")["nodes"] if n["type"] == "ReSyncerPersonalize"]
    declared = load_pack_as_comfyui().nodes.ALL_NODE_CLASSES["ReSyncerPersonalize"].INPUT_TYPES()
    assert declared["optional"]["seed"][1]["control_after_generate"] is False  # no randomize-after-run widget
    widgets = [name for category in ("required", "optional") for name, spec in declared[category].items()
               if _is_widget(spec[0])]
    values = dict(zip(widgets, node["widgets_values"], strict=True))
    assert values["steps"] <= 50 and values["seed"] == 0


@pytest.mark.parametrize("flow", FLOWS)
def test_ui_workflow_is_schema_0_4_with_valid_types_and_links(flow, classes):
    ui = _ui(flow)
    assert ui["version"] == 0.4
    assert {"last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra"} <= set(ui)
    nodes = {node["id"]: node for node in ui["nodes"]}
    assert ui["last_node_id"] == max(nodes) and ui["last_link_id"] == max(link[0] for link in ui["links"])
    for node in ui["nodes"]:
        assert node["type"] in classes, node["type"]
        assert {"id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties",
                "widgets_values"} <= set(node)
        node_class = classes[node["type"]]
        specs = dict(_specs(node_class))
        # The frontend's upload widgets save values after the node's own (checked against ComfyUI 1.35).
        uploads = {"video_upload": 1, "audio_upload": 2}
        extra = sum(n for name, spec in node_class.INPUT_TYPES()["required"].items()
                    for flag, n in uploads.items() if len(spec) > 1 and spec[1].get(flag))
        assert len(node["widgets_values"]) == sum(_is_widget(kind) for kind in specs.values()) + extra
        for entry in node["inputs"]:
            kind = specs[entry["name"]]
            assert entry["type"] == ("COMBO" if isinstance(kind, list) else kind)
            assert ("widget" in entry) == _is_widget(kind)
        assert [o["type"] for o in node["outputs"]] == list(node_class.RETURN_TYPES)
    for link_id, source, slot, target, target_slot, kind in ui["links"]:
        source_node, target_node = nodes[source], nodes[target]
        produced = classes[source_node["type"]].RETURN_TYPES[slot]
        entry = target_node["inputs"][target_slot]
        expected = dict(_specs(classes[target_node["type"]]))[entry["name"]]
        assert kind == produced, (flow, link_id)
        assert types_compatible(produced, expected), (flow, link_id, produced, expected)
        assert entry["link"] == link_id and link_id in source_node["outputs"][slot]["links"]
    # Every required socket is connected.
    for node in ui["nodes"]:
        declared = classes[node["type"]].INPUT_TYPES()["required"]
        connected = {entry["name"] for entry in node["inputs"] if entry.get("link") is not None}
        for name, spec in declared.items():
            if not _is_widget(spec[0]):
                assert name in connected, (flow, node["id"], name)


@pytest.mark.parametrize("flow", FLOWS)
def test_ui_and_api_describe_the_same_graph(flow, classes):
    assert ui_to_api(_ui(flow), classes) == _api(flow)


@pytest.mark.parametrize("flow", FLOWS)
def test_api_workflow_passes_the_executors_validation_with_tiny_models(flow, classes, tmp_path):
    api = _api(flow)
    for node in api.values():  # the file inputs' VALIDATE_INPUTS opens the named files in the input folder
        for name in ("video", "audio", "video_file"):
            if isinstance(node["inputs"].get(name), str) and node["inputs"][name]:
                shutil.copy(synthetic_clip(1.0), tmp_path / node["inputs"][name])
    with context.scoped(models_dir=tiny_models(), input_dir=tmp_path):
        order = GraphExecutor(classes).validate(api)
    assert set(order) == set(api)  # every node feeds the saved video
    assert api[order[-1]]["class_type"] == "ReSyncerSaveVideo"
