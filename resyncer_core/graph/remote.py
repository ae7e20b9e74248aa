"""Run an API-format workflow on a running ComfyUI server over its HTTP API.

    POST /prompt {"prompt": graph, "client_id": id}   -> {"prompt_id": ...} or 400 with node_errors
    ws   /ws?clientId=id                              -> progress / executing / execution_* events
    GET  /history/{prompt_id}                         -> outputs and status once finished
    GET  /view?filename=&subfolder=&type=             -> the bytes of an output file

Only the standard library is needed (urllib); when the optional `websocket-client` package is
importable, progress is followed live over /ws, otherwise /history is polled.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ResyncerInputError

EventListener = Callable[[str, dict], None]


class RemoteError(ResyncerInputError):
    """The server refused the workflow, failed running it, or could not be reached."""


class RemoteInterrupted(RemoteError):
    """The run was interrupted on the server."""


@dataclass
class RemoteResult:
    prompt_id: str
    outputs: dict = field(default_factory=dict)  # {node_id: ui dict} as the server reports
    files: list[Path] = field(default_factory=list)  # downloaded output files
    seconds: float = 0.0


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_prompt_error(body: dict) -> str:
    """One line from ComfyUI's 400 answer: {"error": {...}, "node_errors": {id: {"errors": [...],
    "class_type": ...}}}."""
    node_errors = body.get("node_errors") or {}
    for node_id, entry in sorted(node_errors.items(), key=lambda item: str(item[0])):
        for error in entry.get("errors", []):
            details = f": {error['details']}" if error.get("details") else ""
            return _one_line(f"node {node_id} ({entry.get('class_type', '?')}): {error.get('message', 'invalid')}{details}")
    error = body.get("error") or {}
    if isinstance(error, dict):
        details = f": {error['details']}" if error.get("details") else ""
        return _one_line(f"{error.get('message', 'the server refused the workflow')}{details}")
    return _one_line(str(error or body))


class ComfyClient:
    """A client of one ComfyUI server (`server` like http://127.0.0.1:8188)."""

    def __init__(self, server: str, client_id: str | None = None, timeout: float = 30.0):
        server = server.rstrip("/")
        if "://" not in server:
            server = "http://" + server
        parsed = urllib.parse.urlparse(server)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RemoteError(f"--server {server!r} is not an http(s) URL such as http://127.0.0.1:8188")
        self.server = server
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout

    # ------------------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: dict | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                parsed = json.loads(payload)
            except (json.JSONDecodeError, UnicodeDecodeError):
                parsed = None
            if isinstance(parsed, dict) and ("node_errors" in parsed or "error" in parsed):
                raise RemoteError(f"the server refused the workflow: {describe_prompt_error(parsed)}") from None
            raise RemoteError(f"{method} {path} on {self.server} failed with HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RemoteError(f"cannot reach ComfyUI at {self.server} ({_one_line(reason)}); is it running?") from None

    def _get_json(self, path: str) -> dict:
        raw = self._request("GET", path)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RemoteError(f"GET {path} on {self.server} did not return JSON; is this a ComfyUI server?") from None

    # ------------------------------------------------------------------------------ API

    def submit(self, prompt: dict) -> str:
        """Queues `prompt`; returns its prompt_id."""
        raw = self._request("POST", "/prompt", {"prompt": prompt, "client_id": self.client_id})
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RemoteError(f"POST /prompt on {self.server} did not return JSON; is this a ComfyUI server?") from None
        if answer.get("node_errors"):
            raise RemoteError(f"the server refused the workflow: {describe_prompt_error(answer)}")
        if "prompt_id" not in answer:
            raise RemoteError(f"the server accepted the workflow but gave no prompt_id ({_one_line(answer)})")
        return str(answer["prompt_id"])

    def history(self, prompt_id: str) -> dict | None:
        """The finished entry for `prompt_id`, or None while it is queued or running."""
        entries = self._get_json(f"/history/{urllib.parse.quote(prompt_id)}")
        return entries.get(prompt_id)

    def download(self, item: dict, destination: str | Path) -> Path:
        """GET /view for one {"filename", "subfolder", "type"} output entry into `destination`."""
        query = urllib.parse.urlencode({"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                                        "type": item.get("type", "output")})
        data = self._request("GET", f"/view?{query}")
        destination = Path(destination)
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / Path(item["filename"]).name
        target.write_bytes(data)
        return target

    def interrupt(self) -> None:
        self._request("POST", "/interrupt", {})

    # ------------------------------------------------------------------------------ waiting

    def wait(self, prompt_id: str, listener: EventListener | None = None, poll_interval: float = 0.5,
             timeout: float | None = None, use_websocket: bool | None = None) -> dict:
        """Blocks until `prompt_id` has finished; returns its history entry. Raises RemoteError
        (RemoteInterrupted) when it failed (was interrupted)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if use_websocket is None or use_websocket:
            websocket = _websocket_module()
            if websocket is not None:
                self._follow_websocket(websocket, prompt_id, listener, deadline)
            elif use_websocket:
                raise RemoteError("websocket-client is not installed; pip install websocket-client or poll instead")
        while True:
            entry = self.history(prompt_id)
            if entry is not None and _finished(entry):
                _raise_for_status(entry)
                return entry
            if deadline is not None and time.monotonic() > deadline:
                raise RemoteError(f"prompt {prompt_id} did not finish within {timeout:g} s on {self.server}")
            if listener is not None:
                listener("waiting", {"prompt_id": prompt_id})
            time.sleep(poll_interval)

    def _follow_websocket(self, websocket, prompt_id: str, listener: EventListener | None, deadline: float | None) -> None:
        url = self.server.replace("http", "ws", 1) + f"/ws?clientId={urllib.parse.quote(self.client_id)}"
        try:
            connection = websocket.create_connection(url, timeout=self.timeout)
        except Exception:  # noqa: BLE001  websocket-client raises many types; the history poll still works
            return
        try:
            while deadline is None or time.monotonic() < deadline:
                try:
                    message = connection.recv()
                except Exception:  # noqa: BLE001  a dropped socket: fall back to polling
                    return
                if not isinstance(message, str):
                    continue  # binary preview frames
                try:
                    event = json.loads(message)
                except json.JSONDecodeError:
                    continue
                kind, data = event.get("type"), event.get("data") or {}
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                if listener is not None:
                    listener(kind, data)
                if kind in ("execution_error", "execution_interrupted", "execution_success"):
                    return
                if kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                    return
        finally:
            connection.close()

    def run(self, prompt: dict, output_dir: str | Path | None = None, listener: EventListener | None = None,
            timeout: float | None = None, use_websocket: bool | None = None) -> RemoteResult:
        """Submit, wait, and download every output file into `output_dir` (when given)."""
        started = time.perf_counter()
        prompt_id = self.submit(prompt)
        if listener is not None:
            listener("queued", {"prompt_id": prompt_id})
        entry = self.wait(prompt_id, listener, timeout=timeout, use_websocket=use_websocket)
        outputs = entry.get("outputs") or {}
        files = []
        if output_dir is not None:
            for item in output_files(outputs, kinds=("output",)):
                files.append(self.download(item, output_dir))
        return RemoteResult(prompt_id, outputs, files, time.perf_counter() - started)


def output_files(outputs: dict, kinds: tuple[str, ...] = ("output",)) -> list[dict]:
    """Every {"filename", "subfolder", "type"} entry of a history entry's outputs whose type is
    in `kinds` (previews are "temp")."""
    found = []
    for node_id in sorted(outputs, key=str):
        for values in (outputs[node_id] or {}).values():
            if not isinstance(values, list):
                continue
            for item in values:
                if isinstance(item, dict) and "filename" in item and item.get("type", "output") in kinds:
                    found.append(item)
    return found


def _finished(entry: dict) -> bool:
    status = entry.get("status") or {}
    return bool(status.get("completed")) or status.get("status_str") in ("success", "error") or not status


def _raise_for_status(entry: dict) -> None:
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return
    for kind, data in status.get("messages") or []:
        if kind == "execution_interrupted":
            raise RemoteInterrupted(f"the run was interrupted on the server (node {data.get('node_id')})")
        if kind == "execution_error":
            raise RemoteError(_one_line(f"node {data.get('node_id')} ({data.get('node_type')}) failed on the server: "
                                        f"{data.get('exception_message', '').strip()}"))
    raise RemoteError("the run failed on the server")


def _websocket_module():
    try:
        import websocket  # websocket-client
    except ImportError:
        return None
    return websocket if hasattr(websocket, "create_connection") else None
