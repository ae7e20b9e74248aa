// ReSyncer frontend extension for ComfyUI.
//
// 1. Stage badge: every ReSyncer node shows, in the frontend's node badge row (node.badges,
//    laid out by LiteGraph with the id and source badges), which pipeline stage it is, its
//    progress from the server's "progress" events (tracking frames, SyncFormer windows,
//    generator batches, encoded frames), and afterwards how long it took, or that it failed
//    or was interrupted; a thin progress bar runs under the title. Nodes inside subgraphs are
//    found by their execution id ("12:5" = node 5 inside subgraph node 12). A run's state
//    belongs to the workflow (tab) that queued it: another workflow, or a template opened
//    afterwards, shows its own state, never the numbers of a run of another graph.
// 2. Previews: Track Face and Mesh Overlay send a contact sheet of their crops (tracked mesh
//    dotted in / white mesh overlaid) as {"ui": {"images": [...], "resyncer": [info]}}; ComfyUI
//    shows the image, this extension adds a caption under it (frames, faces found, mask mode)
//    and a link to the full-size sheet. A warning any ReSyncer node sends in that info (no face
//    in any frame, a generator replaced by the mesh warp, a still given the default style) is
//    shown on the node in orange.
// 3. Load Audio gets the frontend's audio player, which its upload button needs.
//
// Plain ES module, no build step; it only uses app.registerExtension, api events, node.badges
// and LiteGraph node callbacks, each guarded so an older or newer frontend degrades to no badge.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

export const EXTENSION_NAME = "ReSyncer.StageBadges";

// Node id → pipeline stage shown in the badge.
export const STAGES = {
  ReSyncerLoadVideo: "decode",
  ReSyncerLoadAudio: "audio in",
  ReSyncerLoadWav2Vec2: "load",
  ReSyncerAudioFeatures: "audio",
  ReSyncerTrackFace: "track",
  ReSyncerStyleReference: "style",
  ReSyncerStylePreset: "style",
  ReSyncerLoadSyncFormer: "load",
  ReSyncerSyncFormer: "syncformer",
  ReSyncerMeshesFromVideo: "meshes",
  ReSyncerMeshOverlay: "render",
  ReSyncerLoadGenerator: "load",
  ReSyncerGenerator: "generator",
  ReSyncerMeshWarp: "warp",
  ReSyncerFaceIdentity: "identity",
  ReSyncerFaceSwapInject: "swap",
  ReSyncerPersonalize: "personalize",
  ReSyncerBlend: "blend",
  ReSyncerSaveVideo: "encode",
  ReSyncerFitLength: "length",
  ReSyncerLipSyncStreaming: "streaming",
};
export const PREVIEW_NODES = new Set(["ReSyncerTrackFace", "ReSyncerMeshOverlay", "ReSyncerFaceIdentity",
                                      "ReSyncerLipSyncStreaming"]);

const COLOURS = {
  running: "#2d7ff9",
  done: "#2f9e44",
  cached: "#5c677d",
  error: "#e03131",
  interrupted: "#f08c00",
};

// Workflow key → its last run's state: execution id (string: "7", or "12:5" inside a subgraph) →
// {status, value, max, started, seconds}.
export const runStates = new Map();
// Prompt id → key of the workflow that queued it (recorded by the wrapped api.queuePrompt).
export const promptOwners = new Map();
let queueTracked = false;
let runOwner = null;  // key of the workflow whose run is executing now; null: a run of no open workflow
let currentNode = null;

// Every node of the pack (ids start with "ReSyncer"); its stage is STAGES' word, else the id's.
export function isReSyncerType(type) {
  return typeof type === "string" && type.startsWith("ReSyncer");
}

// The open workflow (tab): its path in the frontend's workflow store, "default" without one.
export function activeWorkflowKey() {
  const workflow = app?.extensionManager?.workflow?.activeWorkflow;
  return String(workflow?.path ?? workflow?.key ?? "default");
}

function stateOf(key) {
  if (key === null) return null;
  if (!runStates.has(key)) runStates.set(key, new Map());
  return runStates.get(key);
}

// The state shown on the open workflow's nodes.
export function shownState() {
  return runStates.get(activeWorkflowKey()) ?? new Map();
}

function now() {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function nodeIn(graph, id) {
  return graph?.getNodeById?.(Number(id)) ?? graph?.getNodeById?.(id) ?? null;
}

// The ReSyncer node an execution id names: "7" in the root graph, "12:5" node 5 inside the
// subgraph of node 12 (any depth).
export function findNode(id) {
  if (id === null || id === undefined) return null;
  const path = String(id).split(":");
  let graph = app?.graph;
  let node = null;
  for (const [index, part] of path.entries()) {
    node = nodeIn(graph, part);
    if (!node) return null;
    if (index < path.length - 1) graph = node.subgraph;
  }
  if (!isReSyncerType(node.type ?? node.comfyClass)) return null;
  node.__resyncerRunKey = String(id);  // the badge reads its state under this id
  return node;
}

function redraw(node) {
  try {
    node?.setDirtyCanvas?.(true, false);
    app?.graph?.setDirtyCanvas?.(true, false);
  } catch (error) {
    /* drawing is best-effort */
  }
}

function update(id, changes) {
  const state = stateOf(runOwner);
  if (!state) return null;
  const key = String(id);
  const entry = { status: "idle", value: 0, max: 0, started: null, seconds: null, ...(state.get(key) ?? {}), ...changes };
  state.set(key, entry);
  if (runOwner === activeWorkflowKey()) redraw(findNode(key));
  return entry;
}

function finish(id, status) {
  const entry = stateOf(runOwner)?.get(String(id));
  if (!entry || entry.status !== "running") return;
  const seconds = entry.started === null ? null : (now() - entry.started) / 1000;
  update(id, { status, seconds, value: status === "done" ? entry.max : entry.value });
}

// ------------------------------------------------------------------------------ badge

export function stageOf(type) {
  return STAGES[type] ?? String(type).replace(/^ReSyncer/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

export function badgeText(type, entry) {
  const stage = stageOf(type);
  if (!entry || entry.status === "idle") return stage;
  if (entry.status === "running") {
    if (entry.max > 0) {
      const percent = Math.round((100 * entry.value) / entry.max);
      return `${stage} · ${entry.value}/${entry.max} · ${percent}%`;
    }
    return `${stage} · running`;
  }
  if (entry.status === "done") return entry.seconds === null ? `${stage} · done` : `${stage} · ${entry.seconds.toFixed(1)} s`;
  if (entry.status === "cached") return `${stage} · cached`;
  if (entry.status === "interrupted") return `${stage} · stopped`;
  return `${stage} · failed`;
}

function entryOf(node) {
  return shownState().get(node.__resyncerRunKey ?? String(node.id));
}

const BADGE_HEIGHT = 20;
const BADGE_PADDING = 7;
const BADGE_FONT = "11px sans-serif";

// A badge in the shape LiteGraph's LGraphNode.drawBadges takes from node.badges (what
// LGraphBadge offers: height, getWidth(ctx), draw(ctx, x, y)); a fresh one per frame, so its
// text follows the run state.
export function stageBadge(node) {
  const text = badgeText(node.type ?? node.comfyClass, entryOf(node));
  const colour = COLOURS[entryOf(node)?.status] ?? "#495057";
  return {
    text,
    height: BADGE_HEIGHT,
    visible: true,
    getWidth(ctx) {
      const font = ctx.font;
      ctx.font = BADGE_FONT;
      const width = Math.ceil(ctx.measureText(text).width ?? text.length * 6) + 2 * BADGE_PADDING;
      ctx.font = font;
      return width;
    },
    draw(ctx, x, y) {
      const width = this.getWidth(ctx);
      ctx.save();
      ctx.font = BADGE_FONT;
      ctx.fillStyle = colour;
      ctx.beginPath();
      if (ctx.roundRect) ctx.roundRect(x, y, width, BADGE_HEIGHT, 5);
      else ctx.rect(x, y, width, BADGE_HEIGHT);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(text, x + BADGE_PADDING, y + BADGE_HEIGHT / 2);
      ctx.restore();
    },
  };
}

// The progress bar along the top edge of the node body (inside the node, under the title).
export function drawProgressBar(node, ctx) {
  const entry = entryOf(node);
  if (entry?.status !== "running" || !(entry.max > 0)) return;
  const width = node.size?.[0] ?? 200;
  const fraction = Math.max(0, Math.min(1, entry.value / entry.max));
  ctx.save();
  ctx.fillStyle = "rgba(45,127,249,0.35)";
  ctx.fillRect(0, 0, width, 3);
  ctx.fillStyle = COLOURS.running;
  ctx.fillRect(0, 0, width * fraction, 3);
  ctx.restore();
}

// Adds the stage badge to a node once (node.badges is LiteGraph's list, drawn above the title).
export function attachBadge(node) {
  if (node.__resyncerBadge) return;
  node.__resyncerBadge = () => stageBadge(node);
  if (Array.isArray(node.badges)) node.badges.push(node.__resyncerBadge);
  else node.badges = [node.__resyncerBadge];
}

// ------------------------------------------------------------------------------ audio player

// The frontend gives its audio player widget ("audioUI") only to core audio nodes, yet its
// audio upload button (added for an input named "audio" with audio_upload) needs one: add it
// to Load Audio's definition, ahead of the upload button.
export function addAudioPlayer(nodeData) {
  const required = nodeData?.input?.required;
  if (!required?.audio?.[1]?.audio_upload || required.audioUI) return false;
  const { upload, ...rest } = required;
  nodeData.input.required = { ...rest, audioUI: ["AUDIO_UI", {}], ...(upload ? { upload } : {}) };
  return true;
}

// ------------------------------------------------------------------------------ previews

export function viewUrl(image) {
  const query = new URLSearchParams({
    filename: image.filename,
    type: image.type ?? "temp",
    subfolder: image.subfolder ?? "",
  });
  const path = `/view?${query.toString()}`;
  return typeof api?.apiURL === "function" ? api.apiURL(path) : path;
}

export function captionText(type, info) {
  if (!info) return "";
  const parts = [];
  if (info.frames !== undefined) parts.push(`${info.frames} frame${info.frames === 1 ? "" : "s"}`);
  if (info.faces !== undefined) parts.push(`face found in ${info.faces}`);
  if (info.mask_mode) parts.push(info.mask_mode === "face" ? "mask: whole face (swap)" : "mask: lower face");
  if (info.fps !== undefined) parts.push(`${Number(info.fps).toFixed(2).replace(/\.?0+$/, "")} fps`);
  if (info.renderer) parts.push(`drawn by the ${info.renderer}`);
  return parts.join(" · ");
}

export function warningText(info) {
  return info?.warning ? `⚠ ${info.warning}` : "";
}

function previewElement(node) {
  if (node.__resyncerPreview) return node.__resyncerPreview;
  const element = document.createElement("div");
  element.className = "resyncer-preview";
  element.style.cssText = "font: 11px sans-serif; color: #ccc; padding: 2px 4px; overflow: hidden;";
  const caption = document.createElement("div");
  caption.className = "resyncer-caption";
  const warning = document.createElement("div");
  warning.className = "resyncer-warning";
  warning.style.cssText = "color: #f08c00; font-weight: bold;";
  const link = document.createElement("a");
  link.className = "resyncer-open";
  link.target = "_blank";
  link.textContent = "open full size";
  link.style.cssText = "color: #8ab4f8; margin-left: 6px;";
  element.append(caption, warning, link);
  if (typeof node.addDOMWidget === "function") {
    node.addDOMWidget("resyncer_preview", "resyncer_preview", element, { serialize: false, hideOnZoom: false });
  }
  node.__resyncerPreview = element;
  return element;
}

export function showPreview(node, output) {
  const images = output?.images ?? [];
  const info = (output?.resyncer ?? [])[0];
  if (!images.length && !info) return null;
  const element = previewElement(node);
  element.querySelector(".resyncer-caption").textContent = captionText(node.type ?? node.comfyClass, info);
  element.querySelector(".resyncer-warning").textContent = warningText(info);
  const link = element.querySelector(".resyncer-open");
  if (images.length) {
    link.href = viewUrl(images[0]);
    link.style.display = "";
  } else {
    link.style.display = "none";
  }
  return element;
}

// ------------------------------------------------------------------------------ events

// Wraps api.queuePrompt so each prompt id is tied to the workflow that queued it.
export function trackQueuedPrompts() {
  if (typeof api?.queuePrompt !== "function" || api.queuePrompt.__resyncer) return;
  const queuePrompt = api.queuePrompt.bind(api);
  api.queuePrompt = async (...args) => {
    const owner = activeWorkflowKey();
    const response = await queuePrompt(...args);
    if (response?.prompt_id) promptOwners.set(String(response.prompt_id), owner);
    return response;
  };
  api.queuePrompt.__resyncer = true;
  queueTracked = true;
}

// A run starts: it belongs to the workflow that queued it (a prompt posted from elsewhere to
// none; without a queue to watch, to the open one), whose previous run state it replaces.
export function onExecutionStart(detail) {
  const promptId = detail?.prompt_id === undefined ? null : String(detail.prompt_id);
  runOwner = promptOwners.get(promptId) ?? (queueTracked ? null : activeWorkflowKey());
  promptOwners.delete(promptId);
  if (runOwner !== null) runStates.set(runOwner, new Map());
  currentNode = null;
  for (const node of app?.graph?._nodes ?? app?.graph?.nodes ?? []) redraw(node);
}

export function onExecuting(detail) {
  const id = detail && typeof detail === "object" ? detail.node ?? detail.display_node ?? null : detail;
  if (currentNode !== null && currentNode !== String(id)) finish(currentNode, "done");
  currentNode = id === null || id === undefined ? null : String(id);
  if (currentNode !== null && runOwner === activeWorkflowKey() && findNode(currentNode)) {
    update(currentNode, { status: "running", value: 0, max: 0, started: now() });
  }
}

// Events update the run owner's state when its workflow is open (its nodes are then the graph's).
function ownsGraph() {
  return runOwner !== null && runOwner === activeWorkflowKey();
}

export function onProgress(detail) {
  if (!detail || detail.node === undefined || detail.node === null) return;
  if (!ownsGraph() || !findNode(detail.node)) return;
  const entry = stateOf(runOwner).get(String(detail.node));
  update(detail.node, {
    status: "running",
    value: Number(detail.value) || 0,
    max: Number(detail.max) || 0,
    started: entry?.started ?? now(),
  });
}

export function onCached(detail) {
  if (!ownsGraph()) return;
  for (const id of detail?.nodes ?? []) if (findNode(id)) update(id, { status: "cached" });
}

export function onExecuted(detail) {
  const id = detail?.display_node ?? detail?.node;
  if (id !== undefined && ownsGraph() && findNode(id)) finish(id, "done");
}

export function onFailure(status) {
  return (detail) => {
    const id = detail?.node_id ?? detail?.node ?? currentNode;
    if (id !== null && id !== undefined) finish(id, status);
    currentNode = null;
  };
}

function listen(name, handler) {
  api?.addEventListener?.(name, (event) => handler(event?.detail));
}

export const extension = {
  name: EXTENSION_NAME,

  setup() {
    trackQueuedPrompts();
    listen("execution_start", onExecutionStart);
    listen("executing", onExecuting);
    listen("progress", onProgress);
    listen("execution_cached", onCached);
    listen("executed", onExecuted);
    listen("execution_success", () => onExecuting(null));
    listen("execution_error", onFailure("error"));
    listen("execution_interrupted", onFailure("interrupted"));
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isReSyncerType(nodeData?.name)) return;
    addAudioPlayer(nodeData);
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const result = created?.apply(this, args);
      attachBadge(this);
      return result;
    };
    const drawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx, ...rest) {
      const result = drawForeground?.apply(this, [ctx, ...rest]);
      if (!this.flags?.collapsed) drawProgressBar(this, ctx);
      return result;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output, ...rest) {
      const result = executed?.apply(this, [output, ...rest]);
      // The preview nodes' caption; on any node, what it says about itself (a fallback's warning).
      if (PREVIEW_NODES.has(nodeData.name) || output?.resyncer) showPreview(this, output);
      return result;
    };
  },
};

app.registerExtension(extension);
