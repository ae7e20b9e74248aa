"""The generic headless executor: order, caching, defaults, validation, outputs, interrupts."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from resyncer_core.errors import ResyncerInputError
from resyncer_core.graph import context
from resyncer_core.graph.executor import (
    GraphExecutor,
    GraphInterrupted,
    GraphValidationError,
    NodeExecutionError,
    types_compatible,
)
from resyncer_core.graph.prompt import apply_overrides, load_workflow

CALLS: list[str] = []


class Number:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 3, "min": 0, "max": 100})}}

    def run(self, value):
        CALLS.append(f"Number({value})")
        return (value,)


class Add:
    RETURN_TYPES = ("INT", "STRING")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"default": 0}), "b": ("INT", {"default": 0})},
                "optional": {"label": ("STRING", {"default": "sum"})},
                "hidden": {"me": "UNIQUE_ID"}}

    def run(self, a, b, label="sum", me=None):
        CALLS.append(f"Add({a},{b},{label},{me})")
        return (a + b, f"{label}={a + b}")


class Pick:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mode": (["fast", "slow"], {"default": "fast"}), "flag": ("BOOLEAN", {"default": False}),
                             "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0})}}

    def run(self, mode, flag, scale):
        CALLS.append(f"Pick({mode},{flag},{scale})")
        return (f"{mode}-{flag}-{scale}",)


class Show:
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True})}, "optional": {"number": ("INT", {"forceInput": True})}}

    def run(self, text, number=None):
        CALLS.append(f"Show({text},{number})")
        return {"ui": {"text": [text]}, "result": ()}


class Image:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return ("pixels",)


class Describe:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", {})}}

    def run(self, image):
        return (str(image),)


class Loop:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 4})}}

    def run(self, steps):
        for step in range(steps):
            if context.interrupt_requested():
                raise context.ProcessingInterrupted()
            context.report_progress(step + 1, steps)
        return (steps,)


class Broken:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"bad_input": ("BOOLEAN", {"default": False})}}

    def run(self, bad_input):
        if bad_input:
            raise ResyncerInputError("the file is missing; check the path")
        raise RuntimeError("boom\nsecond line")


REGISTRY = {c.__name__: c for c in (Number, Add, Pick, Show, Image, Describe, Loop, Broken)}


def graph(**overrides) -> dict:
    prompt = {
        "1": {"class_type": "Number", "inputs": {"value": 2}},
        "2": {"class_type": "Number", "inputs": {}},  # widget default 3
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"text": ["3", 1], "number": ["3", 0]}},
        "9": {"class_type": "Pick", "inputs": {"mode": "slow", "flag": "true", "scale": "0.5"}},  # no output → not run
    }
    prompt.update(overrides)
    return prompt


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()
    context.clear_interrupt()
    yield
    context.clear_interrupt()


def test_runs_only_what_outputs_need_in_topological_order_with_defaults():
    result = GraphExecutor(REGISTRY).execute(graph())
    assert CALLS == ["Number(2)", "Number(3)", "Add(2,3,sum,3)", "Show(sum=5,5)"]
    assert result.ui == {"4": {"text": ["sum=5"]}}
    assert result.executed == ["1", "2", "3", "4"] and result.outputs["3"] == (5, "sum=5")


def test_outputs_are_cached_until_an_input_changes():
    executor = GraphExecutor(REGISTRY)
    executor.execute(graph())
    CALLS.clear()
    again = executor.execute(graph())
    assert CALLS == [] and again.cached == ["1", "2", "3", "4"] and again.ui == {"4": {"text": ["sum=5"]}}
    changed = graph()
    changed["2"]["inputs"]["value"] = 10
    result = executor.execute(changed)
    assert CALLS == ["Number(10)", "Add(2,10,sum,3)", "Show(sum=12,12)"]
    assert result.cached == ["1"]


def test_widget_values_are_converted_like_comfyui():
    prompt = {"1": {"class_type": "Pick", "inputs": {"mode": "slow", "flag": "true", "scale": "0.5"}},
              "2": {"class_type": "Show", "inputs": {"text": ["1", 0]}}}
    GraphExecutor(REGISTRY).execute(prompt)
    assert CALLS[0] == "Pick(slow,True,0.5)"


@pytest.mark.parametrize("change, expected", [
    ({"5": {"class_type": "Nope", "inputs": {}}, "6": {"class_type": "Show", "inputs": {"text": ["5", 0]}}},
     "node 5 (Nope): unknown node type"),
    ({"1": {"class_type": "Number", "inputs": {"value": 500}}}, "node 1 (Number), input 'value': 500 is bigger than the maximum 100"),
    ({"1": {"class_type": "Number", "inputs": {"value": "many"}}}, "node 1 (Number), input 'value': 'many' cannot be converted to INT"),
    ({"3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["7", 0]}}}, "node 3 (Add), input 'b': linked to node 7, which is not in the workflow"),
    ({"3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["1", 3]}}}, "node 3 (Add), input 'b': linked to output 3 of node 1 (Number), which has 1 output(s)"),
    ({"4": {"class_type": "Show", "inputs": {"text": ["3", 0]}}}, "node 4 (Show), input 'text': expects STRING but is linked to INT (output 0 of node 3, Add)"),
    ({"4": {"class_type": "Show", "inputs": {}}}, "node 4 (Show), input 'text': required input is missing"),
    ({"10": {"class_type": "Image", "inputs": {}}, "11": {"class_type": "Add", "inputs": {"a": ["10", 0]}},
      "4": {"class_type": "Show", "inputs": {"text": ["11", 1], "number": 5}}}, "node 11 (Add), input 'a': expects INT but is linked to IMAGE"),
    ({"12": {"class_type": "Describe", "inputs": {"image": "photo.png"}}, "4": {"class_type": "Show", "inputs": {"text": ["12", 0]}}},
     "node 12 (Describe), input 'image': expects a link from a node giving IMAGE, got the value 'photo.png'"),
    ({"8": {"class_type": "Pick", "inputs": {"mode": "medium"}}, "4": {"class_type": "Show", "inputs": {"text": ["8", 0]}}},
     "node 8 (Pick), input 'mode': 'medium' is not one of the choices (fast, slow)"),
    ({"3": {"class_type": "Add", "inputs": {"a": ["4", 0], "b": 1}}, "4": {"class_type": "Show", "inputs": {"text": ["3", 1]}}},
     "the graph has a cycle"),
    ({"4": {"class_type": "Show", "inputs": {"text": ["3", 1], "number": ["10", 0]}}, "10": {"class_type": "Image", "inputs": {}}},
     "node 4 (Show), input 'number': expects INT but is linked to IMAGE"),
])
def test_validation_errors_are_one_line_naming_node_class_and_input(change, expected):
    with pytest.raises(GraphValidationError) as caught:
        GraphExecutor(REGISTRY).execute(graph(**change))
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message, message
    assert CALLS == []  # nothing ran


def test_no_output_node_and_ui_format_are_refused():
    with pytest.raises(GraphValidationError, match="no output node"):
        GraphExecutor(REGISTRY).execute({"1": {"class_type": "Number", "inputs": {}}})
    with pytest.raises(GraphValidationError, match="UI-format"):
        GraphExecutor(REGISTRY).execute({"nodes": [], "links": []})


def test_node_failures_name_the_node():
    prompt = {"1": {"class_type": "Broken", "inputs": {}}, "2": {"class_type": "Add", "inputs": {"a": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"text": ["2", 1]}}}
    with pytest.raises(NodeExecutionError, match=r"^node 1 \(Broken\) failed: boom$"):
        GraphExecutor(REGISTRY).execute(prompt)
    prompt["1"]["inputs"]["bad_input"] = True
    with pytest.raises(NodeExecutionError) as caught:
        GraphExecutor(REGISTRY).execute(prompt)
    assert isinstance(caught.value.error, ResyncerInputError)


def test_progress_events_and_interrupt_between_steps():
    events = []

    def listener(event, data):
        events.append((event, dict(data)))
        if event == "progress" and data["value"] == 2:
            context.request_interrupt()

    prompt = {"1": {"class_type": "Loop", "inputs": {"steps": 10}},
              "2": {"class_type": "Add", "inputs": {"a": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"text": ["2", 1]}}}
    with pytest.raises(GraphInterrupted) as caught:
        GraphExecutor(REGISTRY, listener=listener).execute(prompt)
    assert caught.value.node_id == "1"
    progress = [d for e, d in events if e == "progress"]
    assert progress == [{"node": "1", "value": 1, "max": 10}, {"node": "1", "value": 2, "max": 10}]
    assert ("execution_interrupted", {"node": "1"}) in events
    assert not any(e == "executing" and d.get("node") == "2" for e, d in events)
    # The next run starts afresh (the interrupt flag is cleared).
    result = GraphExecutor(REGISTRY).execute(prompt)
    assert result.ui["3"] == {"text": ["sum=10"]}


def test_is_changed_forces_a_rerun():
    class Clock(Number):
        ticks = 0

        @classmethod
        def IS_CHANGED(cls, value):
            cls.ticks += 1
            return cls.ticks

    registry = {**REGISTRY, "Clock": Clock}
    prompt = {"1": {"class_type": "Clock", "inputs": {"value": 1}}, "2": {"class_type": "Add", "inputs": {"a": ["1", 0]}},
              "3": {"class_type": "Show", "inputs": {"text": ["2", 1]}}}
    executor = GraphExecutor(registry)
    executor.execute(prompt)
    assert executor.execute(prompt).executed == ["1", "2", "3"]


def test_types_compatible_follows_comfyui():
    assert types_compatible("IMAGE", "IMAGE") and types_compatible("*", "MASK") and types_compatible("INT,FLOAT", "FLOAT")
    assert not types_compatible("IMAGE", "MASK") and not types_compatible("STRING", ["a", "b"])
    assert types_compatible(["a", "b"], "COMBO")


def test_overrides_and_workflow_files(tmp_path):
    prompt = {"1": {"class_type": "Number", "inputs": {"value": 1}, "_meta": {"title": "First"}},
              "2": {"class_type": "Show", "inputs": {"text": "x"}}}
    changed = apply_overrides(prompt, ["First.value=7", "2.text=hello world", "Show.number=[\"1\", 0]"])
    assert changed["1"]["inputs"]["value"] == 7 and changed["2"]["inputs"]["text"] == "hello world"
    assert changed["2"]["inputs"]["number"] == ["1", 0] and prompt["1"]["inputs"]["value"] == 1
    for bad, message in (["value=1"], "node.input=value"), (["9.value=1"], "no node"), (["Number"], "node.input=value"):
        with pytest.raises(ResyncerInputError, match=message):
            apply_overrides(prompt, bad)
    path = tmp_path / "flow.json"
    path.write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(ResyncerInputError, match="UI-format"):
        load_workflow(path)
    path.write_text(json.dumps({"prompt": prompt, "client_id": "x"}))
    assert load_workflow(path) == prompt
    path.write_text("{broken")
    with pytest.raises(ResyncerInputError, match="not valid JSON"):
        load_workflow(path)


def test_resyncer_core_never_imports_comfyui_or_the_pack():
    """DESIGN §2: the library stays importable and testable without ComfyUI."""
    forbidden = {"comfy", "folder_paths", "server", "nodes", "execution", "comfy_api"}
    root = Path(__file__).resolve().parents[1] / "resyncer_core"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert offenders == []
