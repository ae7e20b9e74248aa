"""The shared workflows: up to date with their description, only real node types and sockets,
links whose types match RETURN_TYPES / INPUT_TYPES, UI and API files of the same graph, defaults
that a ComfyUI with no models folder resolves, and the previous release's files still valid."""

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
    "talking_photo": "ReSyncer talking photo",
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
# The workflow files of the release before the loaders defaulted to the shipped files and two
# nodes were renamed (copied from git as they were), as users have them saved.
PREVIOUS_RELEASE = REPO / "tests" / "data" / "previous_workflows"


@pytest.fixture(scope="module")
def classes():
    """The pack's node classes and the stand-ins of the core nodes its templates use (LoadImage)."""
    nodes = load_pack_as_comfyui().nodes
    return {**nodes.CORE_STAND_INS, **nodes.ALL_NODE_CLASSES}


def _specs(node_class) -> list[tuple[str, object]]:
    declared = node_class.INPUT_TYPES()
    return [(name, spec[0]) for category in ("required", "optional") for name, spec in (declared.get(category) or {}).items()]


def _specs_with_defaults(node_class) -> list[tuple[str, object, object]]:
    declared = node_class.INPUT_TYPES()
    return [(name, spec[0], (spec[1] if len(spec) > 1 else {}).get("default", spec[0][0] if isinstance(spec[0], list)
                                                                   and spec[0] else None))
            for category in ("required", "optional") for name, spec in (declared.get(category) or {}).items()]


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
        for name, kind, default in _specs_with_defaults(node_class):
            value = next(values, default) if _is_widget(kind) else None  # a widget added since: its default
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
        uploads = {"image_upload": 1, "video_upload": 1, "audio_upload": 2}
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


def _put_inputs(api: dict, folder) -> None:
    """The files the loaders name, in `folder` (their VALIDATE_INPUTS opens them)."""
    from PIL import Image

    from resyncer_core.video import read_frames

    for node in api.values():
        for name in ("video", "audio", "video_file", "audio_file"):
            if isinstance(node["inputs"].get(name), str) and node["inputs"][name]:
                shutil.copy(synthetic_clip(1.0), folder / node["inputs"][name])
        if node["class_type"] == "LoadImage":
            Image.fromarray(read_frames(synthetic_clip(1.0))[0]).save(folder / node["inputs"]["image"])


def _loaders(api: dict) -> dict[str, str]:
    return {node["_meta"]["title"]: node["inputs"]["model"] for node in api.values() if "model" in node["inputs"]}


@pytest.mark.parametrize("flow", FLOWS)
def test_api_workflow_runs_on_what_ships_with_no_models_folder(flow, classes, tmp_path, monkeypatch):
    """A fresh ComfyUI has no models/resyncer: every loader defaults to a "(shipped)" entry."""
    monkeypatch.delenv("RESYNCER_MODELS", raising=False)
    api = _api(flow)
    _put_inputs(api, tmp_path)
    assert _loaders(api) and all(name.endswith(" (shipped)") for name in _loaders(api).values()), _loaders(api)
    with context.scoped(models_dir=None, input_dir=tmp_path):
        order = GraphExecutor(classes).validate(api)
    assert set(order) == set(api)  # every node feeds the saved video
    assert api[order[-1]]["class_type"] == "ReSyncerSaveVideo"


@pytest.mark.parametrize("flow", FLOWS)
def test_api_workflow_takes_the_users_own_models_by_name(flow, classes, tmp_path):
    """With tiny models in the models folder, they are listed before the shipped files and picked by name."""
    api = _api(flow)
    _put_inputs(api, tmp_path)
    picks = {"ReSyncerLoadWav2Vec2": "wav2vec2", "ReSyncerLoadSyncFormer": "syncformer.safetensors",
             "ReSyncerLoadGenerator": "generator.safetensors"}
    with context.scoped(models_dir=tiny_models(), input_dir=tmp_path):
        for node in api.values():
            if node["class_type"] in picks:
                listed = classes[node["class_type"]].INPUT_TYPES()["required"]["model"][0]
                assert listed[0] == picks[node["class_type"]], listed
                node["inputs"]["model"] = picks[node["class_type"]]
        assert GraphExecutor(classes).validate(api)


@pytest.mark.parametrize("path", sorted(PREVIOUS_RELEASE.glob("*.json")), ids=lambda path: path.stem)
def test_the_previous_releases_workflows_still_load_and_validate(path, classes, tmp_path):
    """Renamed nodes kept their ids and new inputs came last: a saved UI workflow converts as the
    frontend does (widgets added since take their defaults) and both formats validate, with the
    models they name (the user's own, here tiny ones) in the models folder."""
    workflow = json.loads(path.read_text(encoding="utf-8"))
    api = ui_to_api(workflow, classes) if "nodes" in workflow else workflow
    _put_inputs(api, tmp_path)
    with context.scoped(models_dir=tiny_models(), input_dir=tmp_path):
        order = GraphExecutor(classes).validate(api)
    assert set(order) == set(api)


def test_renamed_nodes_say_what_they_load_and_keep_their_ids():
    names = load_pack_as_comfyui().NODE_DISPLAY_NAME_MAPPINGS
    assert names["ReSyncerLoadWav2Vec2"] == "ReSyncer Load Audio Encoder"
    assert names["ReSyncerAudioFeatures"] == "ReSyncer Audio Features"
    previous = {node["type"] for path in PREVIOUS_RELEASE.glob("*.json")
                for node in json.loads(path.read_text(encoding="utf-8")).get("nodes", [])}
    assert {"ReSyncerLoadWav2Vec2", "ReSyncerAudioFeatures"} <= previous <= set(names)


def test_templates_leave_room_for_badges_previews_and_group_titles():
    """At the saved layout nothing overlaps: each node's box, with its title bar and the badge row
    above it (56 px), stays clear of every other node and inside its group below the group's title;
    group titles are distinct and the first view opens clear of the sidebar."""
    for flow in FLOWS:
        ui = _ui(flow)
        boxes = [(n["pos"][0], n["pos"][1] - 56, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
                 for n in ui["nodes"]]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (flow, a, b)
        titles = [group["title"] for group in ui["groups"]]
        assert len(set(titles)) == len(titles), titles
        for group in ui["groups"]:
            x, y, w, h = group["bounding"]
            inside = [box for box in boxes if x <= box[0] and box[2] <= x + w and y <= box[1] <= y + h]
            assert inside and all(box[1] >= y + 40 and box[3] <= y + h for box in inside), (flow, group["title"])
            assert len(group["title"]) * 11 <= w, (flow, group["title"])  # 20 px type: it fits above the group
        assert ui["extra"]["ds"]["offset"][0] >= 80 and ui["extra"]["ds"]["offset"][1] >= 100
        info = ui["extra"]["info"]
        assert info["description"] and info["name"] not in info["description"]
