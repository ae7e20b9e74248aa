"""web/resyncer.js in headless Chromium, against a page that serves it the way ComfyUI does
(/extensions/<pack>/resyncer.js importing ../../scripts/app.js and api.js) with stand-in
`app` and `api` modules. Skipped when no Chromium is installed."""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")

APP_STUB = """
const nodes = new Map();
export const app = {
  extensions: [],
  dirty: 0,
  extensionManager: { workflow: { activeWorkflow: { path: "workflows/a.json" } } },
  registerExtension(extension) { this.extensions.push(extension); },
  graph: {
    _nodes: [],
    add(node) { nodes.set(node.id, node); this._nodes.push(node); },
    getNodeById(id) { return nodes.get(Number(id)) ?? null; },
    setDirtyCanvas() { app.dirty += 1; },
  },
};
"""

API_STUB = """
class StubApi extends EventTarget {
  queued = ["p", "q", "r"];
  apiURL(path) { return "/api" + path; }
  async queuePrompt(number, data) { return { prompt_id: this.queued.shift(), number: 1 }; }
  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}
export const api = new StubApi();
"""

PAGE = """<!doctype html>
<html><body style="background:#222;color:#eee">
<canvas id="canvas" width="760" height="220"></canvas>
<div id="widgets"></div>
<pre id="result">pending</pre>
<script type="module">
import { app } from "/scripts/app.js";
import { api } from "/scripts/api.js";
const out = {};
try {
  const { stageBadge } = await import("/extensions/comfyui-resyncer/resyncer.js");
  out.registered = app.extensions.map((e) => e.name);
  const extension = app.extensions[0];
  extension.setup();

  const made = {};
  for (const [name, id, size] of [["ReSyncerGenerator", 11, [320, 120]], ["ReSyncerMeshOverlay", 10, [320, 200]],
                                  ["KSampler", 3, [300, 100]]]) {
    class NodeType { constructor() { this.widgets = []; } }
    await extension.beforeRegisterNodeDef(NodeType, { name });
    const node = new NodeType();
    Object.assign(node, { id, type: name, size, flags: {}, badges: [] });
    node.onNodeCreated?.();
    node.addDOMWidget = function (widgetName, type, element) {
      document.getElementById("widgets").append(element);
      this.widgets.push({ name: widgetName, type, element });
    };
    app.graph.add(node);
    made[name] = node;
  }
  out.untouched = made.KSampler.onDrawForeground === undefined && made.KSampler.onExecuted === undefined;
  const audioDef = { name: "ReSyncerLoadAudio", input: { required: {
    audio: [["speech.wav"], { audio_upload: true }], start_seconds: ["FLOAT", {}], upload: ["AUDIOUPLOAD", {}] } } };
  class AudioType { constructor() { this.widgets = []; } }
  await extension.beforeRegisterNodeDef(AudioType, audioDef);
  out.audioInputs = Object.keys(audioDef.input.required);
  out.generatorHasPreviewHook = made.ReSyncerGenerator.onExecuted !== undefined;

  const canvas = document.getElementById("canvas").getContext("2d");
  const texts = [];
  const fillText = canvas.fillText.bind(canvas);
  canvas.fillText = (text, x, y) => { texts.push(text); fillText(text, x, y); };
  // What LiteGraph's LGraphNode.drawBadges does with node.badges (entries or functions making them).
  const draw = (node, dx, dy) => {
    canvas.save(); canvas.translate(dx, dy);
    const badges = node.badges.map((b) => (typeof b === "function" ? b() : b));
    let x = node.size[0] - badges.reduce((sum, b) => sum + b.getWidth(canvas) + 2, 0);
    for (const badge of badges) { badge.draw(canvas, x, -32 - badge.height); x += badge.getWidth(canvas) + 2; }
    node.onDrawForeground(canvas);
    canvas.restore();
    return texts.at(-1);
  };
  out.badgeCount = made.ReSyncerGenerator.badges.length;
  made.ReSyncerGenerator.onNodeCreated();  // a second call adds no second badge
  out.badgeCountAgain = made.ReSyncerGenerator.badges.length;
  out.kSamplerBadges = made.KSampler.badges.length;

  out.idle = draw(made.ReSyncerGenerator, 20, 60);
  await api.queuePrompt(0, {});  // queued from workflow a.json: prompt "p"
  api.emit("execution_start", { prompt_id: "p" });
  api.emit("execution_cached", { nodes: ["10"] });
  out.cached = draw(made.ReSyncerMeshOverlay, 400, 60);
  api.emit("executing", "11");
  out.started = draw(made.ReSyncerGenerator, 20, 60);
  api.emit("progress", { node: "11", value: 8, max: 50, prompt_id: "p" });
  out.progress = draw(made.ReSyncerGenerator, 20, 60);
  api.emit("progress", { node: "3", value: 1, max: 2, prompt_id: "p" });  // not ours: ignored

  const output = { images: [{ filename: "ReSyncer_overlay_1.png", subfolder: "", type: "temp" }],
                   resyncer: [{ frames: 50, mask_mode: "mouth" }] };
  made.ReSyncerMeshOverlay.onExecuted(output);
  api.emit("executed", { node: "10", output, prompt_id: "p" });
  const widget = made.ReSyncerMeshOverlay.widgets.find((w) => w.name === "resyncer_preview");
  out.caption = widget?.element.querySelector(".resyncer-caption").textContent;
  out.link = widget?.element.querySelector(".resyncer-open").getAttribute("href");
  made.ReSyncerMeshOverlay.onExecuted({ images: [], resyncer: [{ frames: 1, faces: 1, fps: 29.97 }] });
  out.widgetCount = made.ReSyncerMeshOverlay.widgets.length;
  out.secondCaption = widget?.element.querySelector(".resyncer-caption").textContent;
  made.ReSyncerMeshOverlay.onExecuted({ images: [], resyncer: [{ frames: 3, faces: 0, warning: "no face was found in any frame" }] });
  out.warning = widget?.element.querySelector(".resyncer-warning").textContent;


  api.emit("execution_interrupted", { node_id: "11", prompt_id: "p" });
  out.interrupted = draw(made.ReSyncerGenerator, 20, 130);
  // A ReSyncer node inside a subgraph: execution id "20:7" is node 7 of subgraph node 20.
  class InnerType { constructor() { this.widgets = []; } }
  await extension.beforeRegisterNodeDef(InnerType, { name: "ReSyncerBlend" });
  const inner = Object.assign(new InnerType(), { id: 7, type: "ReSyncerBlend", size: [300, 100], flags: {}, badges: [] });
  inner.onNodeCreated();
  const innerGraph = { getNodeById: (id) => (Number(id) === 7 ? inner : null) };
  app.graph.add({ id: 20, type: "SubgraphNode", subgraph: innerGraph, size: [200, 100] });
  api.emit("executing", "20:7");
  api.emit("progress", { node: "20:7", value: 3, max: 4, prompt_id: "p" });
  out.subgraph = draw(inner, 20, 400);
  await api.queuePrompt(0, {});  // prompt "q"
  api.emit("execution_start", { prompt_id: "q" });
  api.emit("executing", "11");
  api.emit("executing", "12");
  out.finished = draw(made.ReSyncerGenerator, 20, 200);
  // Another workflow (tab, or a template opened now) shows none of a.json's run, and a run it
  // did not queue (posted from elsewhere) badges nothing; back on a.json its run is still shown.
  const workflows = app.extensionManager.workflow;
  workflows.activeWorkflow = { path: "workflows/b.json" };
  out.otherWorkflow = draw(made.ReSyncerGenerator, 20, 200);
  api.emit("execution_start", { prompt_id: "posted-elsewhere" });
  api.emit("executing", "11");
  out.foreignRun = draw(made.ReSyncerGenerator, 20, 200);
  workflows.activeWorkflow = { path: "workflows/a.json" };
  out.backOnA = draw(made.ReSyncerGenerator, 20, 200);
  // A fallback's warning on a node with no preview: the generator replaced by the mesh warp.
  made.ReSyncerGenerator.onExecuted({ resyncer: [{ renderer: "mesh warp", warning: "generator.safetensors is a "
                                                   + "random initialisation (untrained): drawn with the mesh warp instead" }] });
  const generatorWidget = made.ReSyncerGenerator.widgets.find((w) => w.name === "resyncer_preview");
  out.generatorCaption = generatorWidget?.element.querySelector(".resyncer-caption").textContent;
  out.generatorWarning = generatorWidget?.element.querySelector(".resyncer-warning").textContent;
  // Every pack node is badged, Mesh Warp and nodes added later included.
  out.warpBadge = stageBadge({ type: "ReSyncerMeshWarp", id: 99 }).text;
  out.newNodeBadge = stageBadge({ type: "ReSyncerFaceRestore", id: 98 }).text;
  out.redraws = app.dirty;
} catch (error) {
  out.error = String(error && error.stack || error);
}
document.getElementById("result").textContent = JSON.stringify(out);
</script></body></html>
"""


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "app.js").write_text(APP_STUB)
    (root / "scripts" / "api.js").write_text(API_STUB)
    (root / "extensions").mkdir()
    shutil.copytree(REPO / "web", root / "extensions" / "comfyui-resyncer")
    (root / "index.html").write_text(PAGE)

    class Quiet(SimpleHTTPRequestHandler):
        extensions_map: ClassVar[dict] = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


def run_page(url: str, profile: Path, screenshot: Path | None = None) -> str:
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--window-size=800,600"]
    flags += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*flags, url], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_extension_draws_stage_badges_and_preview_captions(site, tmp_path):
    dom = run_page(site, tmp_path / "profile")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert match, dom[-2000:]
    result = json.loads(html.unescape(match.group(1)))
    assert "error" not in result, result.get("error")
    assert result["registered"] == ["ReSyncer.StageBadges"]
    assert result["untouched"] is True and result["generatorHasPreviewHook"] is True
    # The player the frontend's audio upload button needs, ahead of that button.
    assert result["audioInputs"] == ["audio", "start_seconds", "audioUI", "upload"]
    assert result["idle"] == "generator"
    assert result["cached"] == "render · cached"
    assert result["started"] == "generator · running"
    assert result["progress"] == "generator · 8/50 · 16%"
    assert result["caption"] == "50 frames · mask: lower face"
    assert result["link"] == "/api/view?filename=ReSyncer_overlay_1.png&type=temp&subfolder="
    assert result["widgetCount"] == 1 and result["secondCaption"] == "1 frame · face found in 1 · 29.97 fps"
    assert result["badgeCount"] == 1 and result["badgeCountAgain"] == 1 and result["kSamplerBadges"] == 0
    assert result["warning"] == "⚠ no face was found in any frame"
    assert result["subgraph"] == "blend · 3/4 · 75%"
    assert result["interrupted"] == "generator · stopped"
    assert re.fullmatch(r"generator · \d+\.\d s", result["finished"])
    assert result["otherWorkflow"] == "generator" and result["foreignRun"] == "generator"
    assert result["backOnA"] == result["finished"]
    assert result["generatorCaption"] == "drawn by the mesh warp"
    assert result["generatorWarning"] == ("⚠ generator.safetensors is a random initialisation (untrained): drawn with "
                                          "the mesh warp instead")
    assert result["warpBadge"] == "warp" and result["newNodeBadge"] == "face restore"
    assert result["redraws"] > 0
