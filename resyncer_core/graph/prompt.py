"""Reading API-format workflow files and applying `--set node.input=value` overrides."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from ..errors import ResyncerInputError


def load_workflow(path: str | os.PathLike) -> dict:
    """The API-format graph in `path` ({"id": {"class_type", "inputs"}}). A UI-format file
    (nodes + links) is refused with a pointer to its *_api.json twin."""
    path = Path(path)
    if not path.is_file():
        raise ResyncerInputError(f"workflow file {path} does not exist; check the path")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResyncerInputError(f"workflow file {path} is not valid JSON ({error}); fix or re-export it") from None
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict) and "nodes" not in data:
        data = data["prompt"]  # the body of a POST /prompt request
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise ResyncerInputError(
            f"{path} is a UI-format workflow; run its API-format version (ComfyUI: Export (API); "
            "the api_workflows/ folder ships one as *_api.json)")
    if not isinstance(data, dict) or not data or not all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        raise ResyncerInputError(f"{path} is not an API-format workflow ({{\"id\": {{\"class_type\", \"inputs\"}}}})")
    return data


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, null, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def find_node(prompt: dict, selector: str) -> str:
    """A node id from an id, a unique title (_meta.title) or a unique class_type."""
    if selector in prompt:
        return selector
    for key in ("title", "class_type"):
        if key == "title":
            matches = [i for i, n in prompt.items() if (n.get("_meta") or {}).get("title") == selector]
        else:
            matches = [i for i, n in prompt.items() if n.get("class_type") == selector]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ResyncerInputError(f"--set: {selector!r} matches nodes {', '.join(matches)}; use a node id")
    raise ResyncerInputError(f"--set: no node with id, title or type {selector!r} in the workflow")


def apply_overrides(prompt: dict, assignments: list[str]) -> dict:
    """A copy of `prompt` with each "node.input=value" applied (node: id, title or type)."""
    prompt = copy.deepcopy(prompt)
    for assignment in assignments or []:
        target, sep, raw = assignment.partition("=")
        selector, dot, input_name = target.rpartition(".")
        if not sep or not dot or not selector or not input_name:
            raise ResyncerInputError(f"--set {assignment!r} is not of the form node.input=value (e.g. 3.fps=30)")
        node_id = find_node(prompt, selector)
        prompt[node_id].setdefault("inputs", {})[input_name] = parse_value(raw)
    return prompt
