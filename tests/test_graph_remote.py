"""Submitting a workflow to a ComfyUI server over HTTP, against a small stand-in server on the
loopback interface (POST /prompt, GET /history/{id}, GET /view, POST /interrupt)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from resyncer_core.cli import main
from resyncer_core.graph.remote import (
    ComfyClient,
    RemoteError,
    RemoteInterrupted,
    describe_prompt_error,
    output_files,
)

WORKFLOW = Path(__file__).resolve().parents[1] / "api_workflows" / "lipsync_api.json"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42 fake video"


class FakeComfy(BaseHTTPRequestHandler):
    server_version = "FakeComfyUI/1"
    state: ClassVar[dict] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if self.path == "/interrupt":
            self.state["interrupted"] = True
            return self._send(200, {})
        if self.path != "/prompt":
            return self._send(404, {})
        self.state["submitted"] = body
        prompt = body["prompt"]
        if any(node["class_type"] == "Missing" for node in prompt.values()):
            return self._send(400, {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                                              "details": ""},
                                    "node_errors": {"3": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                                                                      "details": "model: 'x.safetensors' not in []"}],
                                                          "class_type": "ReSyncerLoadGenerator"}}})
        self.state["polls"] = 0
        return self._send(200, {"prompt_id": "p-1", "number": 0, "node_errors": {}})

    def do_GET(self):
        parsed = urllib.parse.urlparse(self.path)
        if parsed.path == "/history/p-1":
            self.state["polls"] += 1
            if self.state["polls"] < 2:
                return self._send(200, {})  # still running
            outcome = self.state.get("outcome", "success")
            messages = [["execution_start", {"prompt_id": "p-1"}]]
            if outcome == "error":
                messages.append(["execution_error", {"prompt_id": "p-1", "node_id": "11", "node_type": "ReSyncerGenerator",
                                                     "exception_message": "CUDA out of memory\n"}])
            if outcome == "interrupted":
                messages.append(["execution_interrupted", {"prompt_id": "p-1", "node_id": "11"}])
            return self._send(200, {"p-1": {
                "prompt": [0, "p-1", {}, {}, ["13"]],
                "outputs": {"13": {"images": [{"filename": "lipsync_00001_.mp4", "subfolder": "ReSyncer", "type": "output"}],
                                   "animated": [True]},
                            "10": {"images": [{"filename": "preview.png", "subfolder": "", "type": "temp"}]}},
                "status": {"status_str": "success" if outcome == "success" else "error", "completed": outcome == "success",
                           "messages": messages}}})
        if parsed.path == "/view":
            query = urllib.parse.parse_qs(parsed.query)
            self.state["viewed"] = query
            if query["filename"] == ["lipsync_00001_.mp4"] and query["subfolder"] == ["ReSyncer"] and query["type"] == ["output"]:
                return self._send(200, VIDEO_BYTES)
            return self._send(404, {"error": "not found"})
        return self._send(404, {})


@pytest.fixture
def server():
    FakeComfy.state = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeComfy)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_run_submits_polls_and_downloads_outputs(server, tmp_path):
    prompt = json.loads(WORKFLOW.read_text())
    client = ComfyClient(server, client_id="test-client")
    events = []
    result = client.run(prompt, tmp_path, listener=lambda e, d: events.append(e), timeout=10, use_websocket=False)
    assert FakeComfy.state["submitted"] == {"prompt": prompt, "client_id": "test-client"}
    assert result.prompt_id == "p-1" and result.files == [tmp_path / "lipsync_00001_.mp4"]
    assert result.files[0].read_bytes() == VIDEO_BYTES
    assert "queued" in events and "waiting" in events


def test_cli_run_workflow_with_server(server, tmp_path, capsys):
    code = main(["run-workflow", str(WORKFLOW), "--server", server, "--output-dir", str(tmp_path),
                 "--set", "Target video.video=clip.mp4", "--quiet"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "lipsync_00001_.mp4")
    assert FakeComfy.state["submitted"]["prompt"]["1"]["inputs"]["video"] == "clip.mp4"


def test_server_errors_are_one_line(server, tmp_path, capsys):
    prompt = json.loads(WORKFLOW.read_text())
    prompt["6"]["class_type"] = "Missing"
    with pytest.raises(RemoteError, match=r"node 3 \(ReSyncerLoadGenerator\): Value not in list: model: 'x.safetensors' not in \[\]"):
        ComfyClient(server).submit(prompt)
    FakeComfy.state["outcome"] = "error"
    client = ComfyClient(server)
    with pytest.raises(RemoteError, match=r"^node 11 \(ReSyncerGenerator\) failed on the server: CUDA out of memory$"):
        client.run(json.loads(WORKFLOW.read_text()), tmp_path, use_websocket=False)
    FakeComfy.state["outcome"] = "interrupted"
    with pytest.raises(RemoteInterrupted):
        client.run(json.loads(WORKFLOW.read_text()), tmp_path, use_websocket=False)
    # The CLI turns them into exit status 2 and one line on stderr.
    code = main(["run-workflow", str(WORKFLOW), "--server", server, "--output-dir", str(tmp_path), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "interrupted" in captured.err


def test_unreachable_server_and_bad_urls(tmp_path, capsys):
    with pytest.raises(RemoteError, match="cannot reach ComfyUI"):
        ComfyClient("http://127.0.0.1:9", timeout=2).submit({})
    with pytest.raises(RemoteError, match="not an http"):
        ComfyClient("ftp://host")
    code = main(["run-workflow", str(WORKFLOW), "--server", "http://127.0.0.1:9", "--quiet"])
    assert code == 2 and "cannot reach ComfyUI" in capsys.readouterr().err


def test_output_files_and_error_summaries():
    outputs = {"2": {"images": [{"filename": "b.png", "subfolder": "", "type": "temp"}]},
               "1": {"images": [{"filename": "a.mp4", "subfolder": "x", "type": "output"}], "animated": [True]}}
    assert output_files(outputs) == [{"filename": "a.mp4", "subfolder": "x", "type": "output"}]
    assert len(output_files(outputs, kinds=("output", "temp"))) == 2
    assert describe_prompt_error({"error": {"message": "Prompt has no outputs", "details": ""}}) == "Prompt has no outputs"


def test_progress_follows_the_websocket_when_websocket_client_is_installed(server, tmp_path, monkeypatch):
    """With `websocket-client` importable, events come from /ws?clientId=… until the prompt
    finishes; a stand-in module replays what ComfyUI sends (text events, binary previews)."""
    import sys
    import types

    messages = [b"\x00\x00\x00\x01binary preview",
                json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}),
                json.dumps({"type": "execution_start", "data": {"prompt_id": "p-1"}}),
                json.dumps({"type": "executing", "data": {"node": "11", "prompt_id": "p-1"}}),
                json.dumps({"type": "progress", "data": {"node": "11", "value": 8, "max": 50, "prompt_id": "p-1"}}),
                json.dumps({"type": "progress", "data": {"node": "3", "value": 1, "max": 1, "prompt_id": "other"}}),
                json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "p-1"}}),
                json.dumps({"type": "never", "data": {}})]
    opened = []

    class Connection:
        def recv(self):
            return messages.pop(0)

        def close(self):
            opened.append("closed")

    def create_connection(url, timeout):
        opened.append(url)
        return Connection()

    monkeypatch.setitem(sys.modules, "websocket", types.SimpleNamespace(create_connection=create_connection))
    events = []
    client = ComfyClient(server, client_id="abc")
    result = client.run(json.loads(WORKFLOW.read_text()), tmp_path, listener=lambda e, d: events.append((e, d)))
    assert opened == [server.replace("http", "ws") + "/ws?clientId=abc", "closed"]
    assert ("progress", {"node": "11", "value": 8, "max": 50, "prompt_id": "p-1"}) in events
    assert not any(d.get("prompt_id") == "other" for _, d in events)
    assert messages == [json.dumps({"type": "never", "data": {}})]  # stopped reading once the prompt was done
    assert result.files == [tmp_path / "lipsync_00001_.mp4"]
