#!/usr/bin/env python3
"""Writes the shared workflows, UI format and API format, from one description per flow.

    python tools/build_workflows.py          # rewrite example_workflows/ and api_workflows/
    python tools/build_workflows.py --check  # exit 1 if a committed file is out of date

Each flow is described once below (nodes with their widget values, links by output name);
both files are generated from that description and the node classes' INPUT_TYPES /
RETURN_TYPES, so the UI graph (ComfyUI workflow schema 0.4: nodes, links, groups, config,
extra, version) and the API graph ({"id": {"class_type", "inputs"}}) cannot drift apart.

UI files go to example_workflows/ under a readable name (ComfyUI's template browser lists
every .json there, titled by its file name) with a .jpg thumbnail of the graph beside each;
API files go to api_workflows/ as <flow>_api.json, a folder the browser does not list (it
reads example_workflows, example, examples, workflow and workflows).

File names in the loaders are relative: ComfyUI looks them up in its input folder, the
headless runner in its working folder; override them with `resyncer run-workflow ... --set
"Target video.video=/path/clip.mp4"` (node titles, ids or types work).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
UI_FOLDER = REPO / "example_workflows"
API_FOLDER = REPO / "api_workflows"
THUMBNAIL_SIZE = (512, 288)
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
# What ComfyUI's frontend (1.35) appends to widgets_values after a file combo's own widgets: the
# image and video upload buttons' value; the audio player's and the audio upload button's.
FRONTEND_UPLOAD_VALUES = {"image_upload": ["image"], "video_upload": ["image"], "audio_upload": [None, None]}
COLUMN_WIDTH = 400
NODE_WIDTH = 320
# Above each node: its title bar (30) and the badge row the frontend draws over it (20 + gaps).
TITLE_AND_BADGE_HEIGHT = 30 + 26
ROW_GAP = TITLE_AND_BADGE_HEIGHT + 16
# Room under a node's widgets for what the frontend shows there after a load or a run (at 100 %
# zoom and NODE_WIDTH), so nothing grows over the node below: the preview sheets of Track Face,
# Mesh Overlay and Face Identity, the video, image and audio players, the extension's caption.
PREVIEW_HEIGHTS = {"ReSyncerStyleReference": 70, "ReSyncerTrackFace": 320, "ReSyncerMeshOverlay": 320, "ReSyncerFaceIdentity": 320,
                   "ReSyncerLoadVideo": 340, "ReSyncerSaveVideo": 340, "LoadImage": 340, "ReSyncerLoadAudio": 60,
                   "ReSyncerGenerator": 60, "ReSyncerFaceSwapInject": 60, "ReSyncerLipSyncStreaming": 60}
# Track Face with several faces in view: the largest one (face.selection's default rule).
FOLLOW_LARGEST_FACE = {"face": "largest", "face_index": 0}
GROUP_PADDING = 24
GROUP_TITLE_BAR = 40  # the group's title at font size 20
GROUP_TITLE_HEIGHT = GROUP_TITLE_BAR + TITLE_AND_BADGE_HEIGHT + 8
# Where the first view opens (canvas offset at the saved zoom): clear of the frontend's sidebar and of
# the workflow-name and Run bars over the canvas.
FIRST_VIEW = {"scale": 0.7, "offset": [110, 110]}

# Stages: title, colour. Each column of the layout becomes one group titled by its stages (short:
# a title wider than its group runs into the next group's).
GROUPS = {
    "inputs": ("Inputs", "#3f789e"),
    "models": ("Models", "#444"),
    "length": ("Fit to speech", "#3f789e"),
    "audio": ("Speech", "#8A8"),
    "style": ("Style", "#8A8"),
    "meshes": ("Mouth motion", "#5a8f5a"),
    "face": ("Tracking", "#a1309b"),
    "overlay": ("Mesh on face", "#b06634"),
    "tune": ("Personalize", "#b06634"),
    "generate": ("Render", "#b06634"),
    "stream": ("Streamed lip-sync", "#b06634"),
    "output": ("Paste back", "#88A"),
    "save": ("Save", "#88A"),
}


def load_registry() -> dict[str, type]:
    """Every node class of the pack, and the stand-ins of the core nodes the flows use (LoadImage)."""
    pack = load_pack_module()
    return {**pack.nodes.CORE_STAND_INS, **pack.nodes.ALL_NODE_CLASSES}


@dataclass
class Output:
    node: Node
    name: str


@dataclass
class Node:
    id: int
    class_type: str
    title: str
    group: str
    values: dict = field(default_factory=dict)

    def __getitem__(self, output_name: str) -> Output:
        return Output(self, output_name)


@dataclass
class Flow:
    name: str          # API file: api_workflows/<name>_api.json
    template: str      # UI file and template-browser title: example_workflows/<template>.json
    title: str
    description: str
    nodes: list[Node] = field(default_factory=list)

    def add(self, class_type: str, title: str, group: str, **values) -> Node:
        node = Node(len(self.nodes) + 1, class_type, title, group, values)
        self.nodes.append(node)
        return node


# ------------------------------------------------------------------------------ the flows

def load_pack_module():
    sys.path.insert(0, str(REPO))
    from resyncer_core.graph.pack import load_pack

    return load_pack(REPO)


def shipped(file_name: str) -> str:
    """A loader's combo entry for a file that ships in resyncer_core/weights: what every flow
    defaults to, so a fresh ComfyUI runs it with no models folder (a user's own files are listed
    first and picked by name)."""
    return file_name + load_pack_module().nodes.comfy_adapter.SHIPPED_SUFFIX


def _speech_models(flow: Flow) -> tuple[Node, Node]:
    encoder = flow.add("ReSyncerLoadWav2Vec2", "Load Audio Encoder", "models",
                       model=load_pack_module().nodes.comfy_adapter.WHISPER_ENCODER, device="auto")
    syncformer = flow.add("ReSyncerLoadSyncFormer", "Load Style-SyncFormer", "models",
                          model=shipped("syncformer.safetensors"), device="auto", checkpoint_file="")
    return encoder, syncformer


def _generator_model(flow: Flow) -> Node:
    return flow.add("ReSyncerLoadGenerator", "Load ReSync Generator", "models", model=shipped("generator.safetensors"),
                    device="auto")


def _models(flow: Flow) -> tuple[Node, Node, Node]:
    return *_speech_models(flow), _generator_model(flow)


def _finish(flow: Flow, fps: Output, frames: Node, track: Node, meshes: Output, generator: Output, audio: Output,
            mask_mode: str = "mouth", identity: Node | None = None, prefix: str = "ReSyncer/lipsync") -> None:
    overlay = flow.add("ReSyncerMeshOverlay", "Mesh Overlay", "overlay", images=frames["images"],
                       face_track=track["face_track"], meshes=meshes, mask_mode=mask_mode)
    # face_track and meshes let the node take the mesh warp for a generator that cannot draw this face
    # (untrained, trained on other faces only like the shipped demo generator, or not trained for swap).
    if identity is None:
        crops = flow.add("ReSyncerGenerator", "ReSync Generator", "generate", generator=generator,
                         overlaid_crops=overlay["overlaid_crops"], reference_crops=track["aligned_crops"],
                         batch_size=8, mask=overlay["mask"], precision="fp32", face_track=track["face_track"],
                         meshes=meshes)
    else:
        crops = flow.add("ReSyncerFaceSwapInject", "Face Swap Inject", "generate", generator=generator,
                         identity=identity["identity"], overlaid_crops=overlay["overlaid_crops"],
                         reference_crops=track["aligned_crops"], batch_size=8, mask=overlay["mask"],
                         precision="fp32", face_track=track["face_track"], meshes=meshes)
    _blend_and_save(flow, fps, frames, track, crops["crops"], overlay["mask"], audio, prefix)


def _blend_and_save(flow: Flow, fps: Output, frames: Node, track: Node, crops: Output, mask: Output, audio: Output,
                    prefix: str) -> None:
    blend = flow.add("ReSyncerBlend", "Blend", "output", images=frames["images"], crops=crops,
                     face_track=track["face_track"], mask=mask, feather=8)
    flow.add("ReSyncerSaveVideo", "Save Video", "save", images=blend["images"], fps=fps, filename_prefix=prefix,
             crf=18, audio=audio)


def _target_and_speech(flow: Flow) -> tuple[Node, Node, Node, Node]:
    """Target video and speech, made the same length (Fit Length), and the target's face track."""
    target = flow.add("ReSyncerLoadVideo", "Target video", "inputs", video="target.mp4", start_frame=0, frame_limit=0)
    speech = flow.add("ReSyncerLoadAudio", "Speech", "inputs", audio="speech.wav", start_seconds=0.0,
                      duration_seconds=0.0)
    frames = flow.add("ReSyncerFitLength", "Fit Length", "length", images=target["images"], fps=target["fps"],
                      long_audio="pingpong", short_audio="trim", audio=speech["audio"])
    return target, frames, _track_target(flow, frames), speech


def _track_target(flow: Flow, frames: Node) -> Node:
    return flow.add("ReSyncerTrackFace", "Track target face", "face", images=frames["images"], fps=frames["fps"],
                    smoothing=0.5, device="auto", **FOLLOW_LARGEST_FACE)


def _own_style(flow: Flow, track: Node) -> Node:
    """The speaking-style reference from the target itself: 90 frames, the stretch the node picks (start -1)."""
    return flow.add("ReSyncerStyleReference", "Style Reference (own)", "style", face_track=track["face_track"],
                    start=-1, length=90)


def _audio_meshes(flow: Flow, frames: Node, track: Node, style: Node, encoder: Node, syncformer: Node,
                  identity: Node | None = None) -> Node:
    features = flow.add("ReSyncerAudioFeatures", "Audio Features", "audio", audio=frames["audio"],
                        audio_encoder=encoder["audio_encoder"], fps=frames["fps"], frame_count=frames["frame_count"])
    values = {"syncformer": syncformer["syncformer"], "audio_features": features["audio_features"],
              "style": style["style"], "face_track": track["face_track"]}
    if identity is not None:
        values["identity"] = identity["identity"]
    return flow.add("ReSyncerSyncFormer", "Style-SyncFormer", "meshes", **values)


def lipsync() -> Flow:
    flow = Flow("lipsync", "ReSyncer lip-sync", "ReSyncer: audio-driven lip-sync",
                "Re-animates the mouth of a video to new speech in the person's own speaking style; the shipped "
                "generator draws its demo face, the mesh warp any other (pick your own trained files in the loaders).")
    target, frames, track, speech = _target_and_speech(flow)
    encoder, syncformer, generator = _models(flow)
    style = _own_style(flow, track)
    meshes = _audio_meshes(flow, frames, track, style, encoder, syncformer)
    _finish(flow, frames["fps"], frames, track, meshes["meshes"], generator["generator"], frames["audio"])
    return flow


def talking_photo() -> Flow:
    flow = Flow("talking_photo", "ReSyncer talking photo", "ReSyncer: make a photo speak",
                "A portrait from core Load Image held for the length of the speech (its frame rate set in Fit "
                "Length), its mouth moved to the words in a shipped speaking style (Style Preset) by the shipped "
                "models.")
    photo = flow.add("LoadImage", "Photo", "inputs", image="photo.png")
    speech = flow.add("ReSyncerLoadAudio", "Speech", "inputs", audio="speech.wav", start_seconds=0.0,
                      duration_seconds=0.0)
    frames = flow.add("ReSyncerFitLength", "Hold photo for the speech", "length", images=photo["IMAGE"], fps=25.0,
                      long_audio="pingpong", short_audio="trim", audio=speech["audio"])
    track = _track_target(flow, frames)
    encoder, syncformer, generator = _models(flow)
    # A photo shows no speaking style of its own: a shipped one.
    style = flow.add("ReSyncerStylePreset", "Style Preset", "style", preset="natural")
    meshes = _audio_meshes(flow, frames, track, style, encoder, syncformer)
    _finish(flow, frames["fps"], frames, track, meshes["meshes"], generator["generator"], frames["audio"],
            prefix="ReSyncer/talking_photo")
    return flow


def shipped_mesh_warp() -> Flow:
    flow = Flow("lipsync_mesh_warp", "ReSyncer mesh-warp lip-sync",
                "ReSyncer: lip-sync any face with the shipped models",
                "Needs no models folder: the shipped Whisper encoder and Style-SyncFormer predict the mouth from the "
                "speech, and the training-free Mesh Warp draws it on any face.")
    target, frames, track, speech = _target_and_speech(flow)
    encoder, syncformer = _speech_models(flow)
    style = _own_style(flow, track)
    meshes = _audio_meshes(flow, frames, track, style, encoder, syncformer)
    warp = flow.add("ReSyncerMeshWarp", "Mesh Warp", "generate", reference_crops=track["aligned_crops"],
                    face_track=track["face_track"], meshes=meshes["meshes"], mask_mode="mouth", batch_size=16,
                    device="auto")
    _blend_and_save(flow, frames["fps"], frames, track, warp["crops"], warp["mask"], frames["audio"],
                    "ReSyncer/mesh_warp")
    return flow


def style_transfer() -> Flow:
    flow = Flow("lipsync_style_transfer", "ReSyncer style transfer",
                "ReSyncer: lip-sync with speaking-style transfer",
                "Lip-syncs the target to new speech, its mouth moving the way the person in a second video speaks.")
    target, frames, track, speech = _target_and_speech(flow)
    encoder, syncformer, generator = _models(flow)
    reference = flow.add("ReSyncerLoadVideo", "Style video", "inputs", video="style.mp4", start_frame=0, frame_limit=0)
    reference_track = flow.add("ReSyncerTrackFace", "Track style face", "face", images=reference["images"],
                               fps=reference["fps"], smoothing=0.5, device="auto", **FOLLOW_LARGEST_FACE)
    style = flow.add("ReSyncerStyleReference", "Style Reference (other person)", "style",
                     face_track=reference_track["face_track"], start=-1, length=90)
    meshes = _audio_meshes(flow, frames, track, style, encoder, syncformer)
    _finish(flow, frames["fps"], frames, track, meshes["meshes"], generator["generator"], frames["audio"],
            prefix="ReSyncer/style_transfer")
    return flow


def video_driven() -> Flow:
    flow = Flow("video_driven", "ReSyncer video-driven", "ReSyncer: video-driven lip-sync",
                "No speech model: the target's mouth copies the driver video's mouth motion (fitted to the target's "
                "face shape) and takes the driver's soundtrack.")
    target = flow.add("ReSyncerLoadVideo", "Target video", "inputs", video="target.mp4", start_frame=0, frame_limit=0)
    driver = flow.add("ReSyncerLoadVideo", "Driver video", "inputs", video="driver.mp4", start_frame=0, frame_limit=0)
    frames = flow.add("ReSyncerFitLength", "Fit Length", "length", images=target["images"], fps=target["fps"],
                      long_audio="pingpong", short_audio="trim", audio=driver["audio"],
                      driving_frames=driver["frame_count"])
    track = _track_target(flow, frames)
    driver_track = flow.add("ReSyncerTrackFace", "Track driver face", "face", images=driver["images"],
                            fps=driver["fps"], smoothing=0.5, device="auto", **FOLLOW_LARGEST_FACE)
    generator = _generator_model(flow)
    meshes = flow.add("ReSyncerMeshesFromVideo", "Meshes From Video", "meshes", driver_track=driver_track["face_track"],
                      target_track=track["face_track"])
    _finish(flow, frames["fps"], frames, track, meshes["meshes"], generator["generator"], frames["audio"],
            prefix="ReSyncer/video_driven")
    return flow


def face_swap() -> Flow:
    flow = Flow("face_swap_lipsync", "ReSyncer face swap", "ReSyncer: face swap + lip-sync",
                "Gives the target video the face of the person in the source clip, speaking the new speech; needs a "
                "swap-trained generator (without one the mesh warp only reshapes the target's face).")
    target, frames, track, speech = _target_and_speech(flow)
    encoder, syncformer, generator = _models(flow)
    source = flow.add("ReSyncerLoadVideo", "Source face", "inputs", video="source_face.mp4", start_frame=0,
                      frame_limit=25)
    identity = flow.add("ReSyncerFaceIdentity", "Face Identity", "face", images=source["images"], fps=source["fps"])
    style = _own_style(flow, track)
    meshes = _audio_meshes(flow, frames, track, style, encoder, syncformer, identity=identity)
    _finish(flow, frames["fps"], frames, track, meshes["meshes"], generator["generator"], frames["audio"],
            mask_mode="face", identity=identity, prefix="ReSyncer/face_swap")
    return flow


# A few minutes on a CPU with small models; raise it (the paper: minutes on a GPU) for real footage.
PERSONALIZE_STEPS = 20


def personalize() -> Flow:
    flow = Flow("personalize_lipsync", "ReSyncer personalize", "ReSyncer: personalize, then lip-sync",
                "Fine-tunes a copy of the generator on the target video's own frames for a few steps, then lip-syncs "
                "the video with it (save_as keeps the tuned generator for later runs).")
    target, frames, track, speech = _target_and_speech(flow)
    encoder, syncformer, generator = _models(flow)
    # No VGG19 ships: "none" takes the shipped EfficientNet-Lite0 feature loss.
    tuned = flow.add("ReSyncerPersonalize", "Personalize", "tune", generator=generator["generator"],
                     images=frames["images"], face_track=track["face_track"], steps=PERSONALIZE_STEPS, lr=1e-4,
                     batch_size=4, discriminator=shipped("discriminator.safetensors"), vgg19="none", seed=0,
                     save_as="", w_plus=False)
    style = _own_style(flow, track)
    meshes = _audio_meshes(flow, frames, track, style, encoder, syncformer)
    _finish(flow, frames["fps"], frames, track, meshes["meshes"], tuned["generator"], frames["audio"],
            prefix="ReSyncer/personalized")
    return flow


def streaming() -> Flow:
    flow = Flow("lipsync_streaming", "ReSyncer streaming lip-sync",
                "ReSyncer: lip-sync a long video (streaming)",
                "The whole lip-sync in one node that streams a few frames at a time, so minutes of 1080p fit in "
                "memory. Switch its mode to video-driven or swap for the other pipelines.")
    encoder, syncformer, generator = _models(flow)
    lipsync = flow.add("ReSyncerLipSyncStreaming", "Lip-sync (streaming)", "stream", generator=generator["generator"],
                       mode="audio", long_audio="pingpong", short_audio="trim", batch_size=8, chunk_frames=8, crf=18,
                       video_file="target.mp4", audio_file="speech.wav", syncformer=syncformer["syncformer"],
                       audio_encoder=encoder["audio_encoder"])
    flow.add("ReSyncerSaveVideo", "Save Video", "save", video=lipsync["video"], filename_prefix="ReSyncer/streaming")
    return flow


FLOWS = (lipsync, talking_photo, shipped_mesh_warp, style_transfer, video_driven, face_swap, personalize, streaming)


# ------------------------------------------------------------------------------ generation

def input_specs(node_class: type) -> list[tuple[str, object, dict, str]]:
    """(name, type, options, category) of required then optional inputs (hidden ones skipped)."""
    declared = node_class.INPUT_TYPES()
    specs = []
    for category in ("required", "optional"):
        for name, spec in (declared.get(category) or {}).items():
            spec = tuple(spec)
            specs.append((name, spec[0], spec[1] if len(spec) > 1 else {}, category))
    return specs


def is_widget(kind) -> bool:
    return isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES


def socket_type(kind) -> str:
    return "COMBO" if isinstance(kind, (list, tuple)) else kind


def _check(flow: Flow, registry: dict[str, type]) -> None:
    for node in flow.nodes:
        if node.class_type not in registry:
            raise SystemExit(f"{flow.name}: node {node.id} uses unknown type {node.class_type}")
        names = {name for name, *_ in input_specs(registry[node.class_type])}
        unknown = set(node.values) - names
        if unknown:
            raise SystemExit(f"{flow.name}: node {node.id} ({node.class_type}) has no inputs {sorted(unknown)}")


def _output_index(registry, output: Output) -> tuple[int, str]:
    node_class = registry[output.node.class_type]
    names = list(getattr(node_class, "RETURN_NAMES", None) or node_class.RETURN_TYPES)
    index = names.index(output.name)
    return index, node_class.RETURN_TYPES[index]


def build_api(flow: Flow, registry: dict[str, type]) -> dict:
    api = {}
    for node in flow.nodes:
        inputs = {}
        for name, kind, options, category in input_specs(registry[node.class_type]):
            value = node.values.get(name)
            if isinstance(value, Output):
                inputs[name] = [str(value.node.id), _output_index(registry, value)[0]]
            elif name in node.values:
                inputs[name] = value
            elif is_widget(kind):  # as the frontend's Export (API): every widget, optional ones too
                inputs[name] = options.get("default", kind[0] if isinstance(kind, (list, tuple)) else None)
        api[str(node.id)] = {"class_type": node.class_type, "inputs": inputs, "_meta": {"title": node.title}}
    return api


def _depths(flow: Flow) -> dict[int, int]:
    depth: dict[int, int] = {}

    def visit(node: Node) -> int:
        if node.id not in depth:
            upstream = [v.node for v in node.values.values() if isinstance(v, Output)]
            depth[node.id] = 1 + max((visit(u) for u in upstream), default=-1)
        return depth[node.id]

    for node in flow.nodes:
        visit(node)
    return depth


def _package(class_type: str) -> str:
    """The registry id of the package a node comes from (the frontend's cnr_id)."""
    return "comfyui-resyncer" if class_type.startswith("ReSyncer") else "comfy-core"


def _node_height(sockets: int, outputs: int, widgets: int) -> int:
    return 46 + 22 * max(sockets, outputs) + 26 * widgets


def build_ui(flow: Flow, registry: dict[str, type]) -> dict:
    depth = _depths(flow)
    stage_rank = {key: rank for rank, key in enumerate(GROUPS)}
    links = []
    ui_nodes = {}
    order = sorted(flow.nodes, key=lambda n: (depth[n.id], stage_rank[n.group], n.id))
    column_y: dict[int, float] = {}
    for rank, node in enumerate(order):
        node_class = registry[node.class_type]
        inputs, widgets_values = [], []
        for name, kind, options, category in input_specs(node_class):
            value = node.values.get(name)
            if is_widget(kind):
                if isinstance(value, Output):
                    inputs.append({"name": name, "type": socket_type(kind), "widget": {"name": name}, "link": None})
                    widgets_values.append(options.get("default", kind[0] if isinstance(kind, (list, tuple)) else None))
                else:
                    default = options.get("default", kind[0] if isinstance(kind, (list, tuple)) else None)
                    widgets_values.append(value if name in node.values else default)
            else:
                entry = {"name": name, "type": kind, "link": None}
                if category == "optional":
                    entry["shape"] = 7  # LiteGraph's hollow dot for optional sockets
                inputs.append(entry)
        for name, kind, options, category in input_specs(node_class):
            for flag, extra in FRONTEND_UPLOAD_VALUES.items():
                if options.get(flag):
                    widgets_values += extra
        names = list(getattr(node_class, "RETURN_NAMES", None) or node_class.RETURN_TYPES)
        outputs = [{"name": n, "type": t, "links": [], "slot_index": i}
                   for i, (n, t) in enumerate(zip(names, node_class.RETURN_TYPES))]
        sockets = len(inputs)
        height = _node_height(sockets, len(outputs), len(widgets_values) - sum(1 for i in inputs if "widget" in i))
        height += PREVIEW_HEIGHTS.get(node.class_type, 0)
        column = depth[node.id]
        y = column_y.get(column, 80.0 + GROUP_TITLE_HEIGHT)
        column_y[column] = y + height + ROW_GAP
        ui_nodes[node.id] = {
            "id": node.id, "type": node.class_type, "pos": [40 + column * COLUMN_WIDTH, y],
            "size": [NODE_WIDTH, height], "flags": {}, "order": rank, "mode": 0,
            "inputs": inputs, "outputs": outputs, "title": node.title,
            "properties": {"Node name for S&R": node.class_type, "cnr_id": _package(node.class_type)},
            "widgets_values": widgets_values,
        }
    for node in flow.nodes:  # links in a stable order: by target node, then input order
        for slot, entry in enumerate(ui_nodes[node.id]["inputs"]):
            value = node.values.get(entry["name"])
            if not isinstance(value, Output):
                continue
            index, kind = _output_index(registry, value)
            link_id = len(links) + 1
            links.append([link_id, value.node.id, index, node.id, slot, kind])
            entry["link"] = link_id
            ui_nodes[value.node.id]["outputs"][index]["links"].append(link_id)
    for node in ui_nodes.values():
        for output in node["outputs"]:
            if not output["links"]:
                output["links"] = None
    groups = []
    titles: set[str] = set()
    for column in sorted(set(depth.values())):  # one group per column: groups never overlap
        members = [n for n in order if depth[n.id] == column]
        stages = list(dict.fromkeys(n.group for n in members))
        title = " · ".join(GROUPS[s][0] for s in stages)
        if title in titles:  # the same stages as an earlier column: its nodes say what differs
            title = " · ".join(n.title for n in members)
        titles.add(title)
        boxes = [ui_nodes[n.id] for n in members]
        x0 = min(b["pos"][0] for b in boxes) - GROUP_PADDING
        y0 = min(b["pos"][1] for b in boxes) - GROUP_TITLE_HEIGHT
        x1 = max(b["pos"][0] + b["size"][0] for b in boxes) + GROUP_PADDING
        y1 = max(b["pos"][1] + b["size"][1] for b in boxes) + GROUP_PADDING
        groups.append({"id": len(groups) + 1, "title": f"{column + 1} · {title}",
                       "bounding": [x0, y0, x1 - x0, y1 - y0], "color": GROUPS[stages[0]][1], "font_size": 20,
                       "flags": {}})
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-resyncer/{flow.name}")),
        "revision": 0,
        "last_node_id": max(ui_nodes),
        "last_link_id": len(links),
        "nodes": [ui_nodes[n.id] for n in flow.nodes],
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": FIRST_VIEW,
                  "info": {"name": flow.title, "description": flow.description, "author": "comfyui-resyncer"}},
        "version": 0.4,
    }


def render(registry: dict[str, type] | None = None) -> dict[Path, str]:
    """{path: JSON text} of every workflow, UI and API."""
    registry = registry or load_registry()
    files = {}
    for make in FLOWS:
        flow = make()
        _check(flow, registry)
        files[UI_FOLDER / f"{flow.template}.json"] = json.dumps(build_ui(flow, registry), indent=2) + "\n"
        files[API_FOLDER / f"{flow.name}_api.json"] = json.dumps(build_api(flow, registry), indent=2) + "\n"
    return files


def draw_thumbnail(ui: dict, path: Path) -> None:
    """A picture of the graph for the template browser: every node a box in its group's colour,
    links as lines, the workflow's name and description on top (ComfyUI 1.35's browser captions a
    pack's template with its file name only, so the picture carries what it does)."""
    import textwrap

    from PIL import Image, ImageDraw

    width, height = THUMBNAIL_SIZE
    image = Image.new("RGB", THUMBNAIL_SIZE, "#202020")
    draw = ImageDraw.Draw(image)
    boxes = {node["id"]: (*node["pos"], *node["size"]) for node in ui["nodes"]}
    left = min(x for x, _, _, _ in boxes.values())
    top = min(y for _, y, _, _ in boxes.values())
    right = max(x + w for x, _, w, _ in boxes.values())
    bottom = max(y + h for _, y, _, h in boxes.values())
    description = textwrap.wrap(ui["extra"]["info"]["description"], 78)
    banner = 34 + 14 * len(description)
    scale = min((width - 24) / (right - left), (height - banner - 16) / (bottom - top))

    def place(x: float, y: float) -> tuple[float, float]:
        return 12 + (x - left) * scale, banner + 4 + (y - top) * scale

    colours = {}
    for group in ui["groups"]:
        gx, gy, gw, gh = group["bounding"]
        for node_id, (x, y, _, _) in boxes.items():
            if gx <= x <= gx + gw and gy <= y <= gy + gh:
                colours[node_id] = group["color"]
    for _, source, _, target, _, _ in ui["links"]:
        sx, sy, sw, sh = boxes[source]
        tx, ty, _, th = boxes[target]
        draw.line([place(sx + sw, sy + sh / 2), place(tx, ty + th / 2)], fill="#8a8a8a", width=2)
    for node_id, (x, y, w, h) in boxes.items():
        x0, y0 = place(x, y)
        x1, y1 = place(x + w, y + h)
        draw.rounded_rectangle([x0, y0, x1, y1], radius=4, fill=colours.get(node_id, "#555"), outline="#dddddd")
    draw.rectangle([0, 0, width, banner], fill="#2d7ff9")
    draw.text((12, 8), ui["extra"]["info"]["name"], fill="white", font_size=18)
    for line, text in enumerate(description):
        draw.text((12, 30 + 14 * line), text, fill="#dfe9ff", font_size=11)
    image.save(path, quality=88)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed files are up to date")
    args = parser.parse_args(argv)
    files = render()
    stale = [path for path, text in files.items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    stale += [path.with_suffix(".jpg") for path in files if path.parent == UI_FOLDER
              and (path in stale or not path.with_suffix(".jpg").is_file())]
    leftovers = [path for folder in (UI_FOLDER, API_FOLDER) for path in sorted(folder.glob("*.json"))
                 if path not in files]
    if args.check:
        if stale or leftovers:
            names = ", ".join(str(p.relative_to(REPO)) for p in stale + leftovers)
            print(f"out of date: {names}; run python tools/build_workflows.py", file=sys.stderr)
            return 1
        return 0
    for path in leftovers:
        path.unlink()
        path.with_suffix(".jpg").unlink(missing_ok=True)
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        if path.suffix == ".jpg":
            draw_thumbnail(json.loads(files[path.with_suffix(".json")]), path)
        else:
            path.write_text(files[path], encoding="utf-8")
    print(f"wrote {len(stale)} file(s)" if stale else "all workflows up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
