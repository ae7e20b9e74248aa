"""Run an API-format ComfyUI graph in this process against any registry of node classes.

API format (what ComfyUI's "Export (API)" writes and POST /prompt takes):

    {"7": {"class_type": "ReSyncerBlend",
           "inputs": {"images": ["1", 0], "feather": 0.1}, "_meta": {"title": "Blend"}}, ...}

An input is a link `[node_id, output_index]` or a literal widget value. Node classes follow
ComfyUI's classic node API (INPUT_TYPES / RETURN_TYPES / FUNCTION / OUTPUT_NODE); this module
knows nothing about any particular pack.

What the executor does, in ComfyUI's manner:
- runs only the nodes an output node (OUTPUT_NODE = True) depends on, in topological order;
- validates every such node first (class exists, links point at existing outputs of a
  compatible type, widget values convert and lie within min/max or in the combo list,
  required inputs present; inputs a node's VALIDATE_INPUTS takes skip the combo check and are
  judged by it, as in ComfyUI, so missing files and bad paths fail before any node runs) and
  reports the first problem as one line naming the node id, its class and the input; a missing
  widget value takes the input's default;
- caches outputs between `execute` calls on one executor: a node runs again only when its
  class, its widget values, its upstream results or its IS_CHANGED value change;
- runs node code under torch.inference_mode(), as ComfyUI does (inference_mode=False turns it off);
- passes hidden inputs UNIQUE_ID and PROMPT; a node's function may return a tuple or a dict
  with "result" and/or "ui" (the "ui" parts of output nodes and previews are collected);
- turns ProcessingInterrupted (see context.py) raised by a node, or an interrupt requested
  between nodes, into GraphInterrupted, and any other node failure into NodeExecutionError.
Not supported (rejected at validation): INPUT_IS_LIST / OUTPUT_IS_LIST list mapping, lazy inputs.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ResyncerInputError
from . import context

EventListener = Callable[[str, dict], None]
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
_HIDDEN_VALUES = {"UNIQUE_ID", "PROMPT", "EXTRA_PNGINFO", "DYNPROMPT", "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG"}


class GraphValidationError(ResyncerInputError):
    """The graph cannot run as given; the message is one line naming node, class and input."""

    def __init__(self, message: str, node_id: str | None = None, class_type: str | None = None,
                 input_name: str | None = None, problems: list[str] | None = None):
        super().__init__(message)
        self.node_id, self.class_type, self.input_name = node_id, class_type, input_name
        self.problems = problems or [message]


class NodeExecutionError(RuntimeError):
    """A node raised while running; `__cause__` holds the original exception."""

    def __init__(self, node_id: str, class_type: str, error: BaseException):
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        super().__init__(f"node {node_id} ({class_type}) failed: {detail}")
        self.node_id, self.class_type, self.error = node_id, class_type, error


class GraphInterrupted(Exception):
    """The run was interrupted; `node_id` is the node that was running (None between nodes)."""

    def __init__(self, node_id: str | None, class_type: str | None = None):
        where = f" in node {node_id} ({class_type})" if node_id is not None else ""
        super().__init__(f"processing was interrupted{where}")
        self.node_id, self.class_type = node_id, class_type


@dataclass
class ExecutionResult:
    """`ui`: {node_id: ui dict} of every node that returned one (output nodes and previews);
    `outputs`: {node_id: tuple of output values}; `executed` / `cached`: node ids in run order."""

    ui: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, tuple] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _InputSpec:
    name: str
    category: str  # required | optional | hidden
    type: Any  # a type string, or a list of combo options
    options: dict

    @property
    def is_combo(self) -> bool:
        return isinstance(self.type, (list, tuple)) or self.type == "COMBO"

    @property
    def combo_options(self) -> list:
        if isinstance(self.type, (list, tuple)):
            return list(self.type)
        return list(self.options.get("options", []))

    @property
    def is_widget(self) -> bool:
        return self.is_combo or self.type in WIDGET_TYPES


def is_link(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def types_compatible(received, expected) -> bool:
    """ComfyUI's rule: equal, either is "*", a combo receiving a list of options, or the
    comma-separated type sets overlap."""
    if received == expected or received == "*" or expected == "*":
        return True
    if isinstance(received, (list, tuple)) and (expected == "COMBO" or isinstance(expected, (list, tuple))):
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in expected.split(",")})


def input_specs(node_class: type) -> dict[str, _InputSpec]:
    """{input name: spec} over required, optional and hidden inputs, in declaration order."""
    declared = node_class.INPUT_TYPES()
    specs: dict[str, _InputSpec] = {}
    for category in ("required", "optional", "hidden"):
        for name, spec in (declared.get(category) or {}).items():
            if category == "hidden":
                specs[name] = _InputSpec(name, category, spec, {})
                continue
            spec = tuple(spec) if isinstance(spec, (list, tuple)) else (spec,)
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            specs[name] = _InputSpec(name, category, spec[0], options)
    return specs


def _label(node_id: str, class_type: str | None) -> str:
    return f"node {node_id} ({class_type})" if class_type else f"node {node_id}"


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _convert_widget(spec: _InputSpec, value, check_choices: bool = True):
    """Converts a literal to the widget's type (as ComfyUI does) and checks min/max and, with
    check_choices, combos; returns (value, None) or (None, problem)."""
    if isinstance(value, dict) and "__value__" in value:
        value = value["__value__"]
    try:
        if spec.type == "INT":
            if isinstance(value, float) and not value.is_integer():
                return None, f"{value!r} is not a whole number"
            value = int(value)
        elif spec.type == "FLOAT":
            value = float(value)
            if not math.isfinite(value):
                return None, f"{value!r} is not a finite number"
        elif spec.type == "STRING":
            value = str(value)
        elif spec.type == "BOOLEAN":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    return None, f"{value!r} is not true or false"
                value = lowered in ("true", "1", "yes")
            else:
                value = bool(value)
    except (TypeError, ValueError):
        return None, f"{_short(value)} cannot be converted to {spec.type}"
    if spec.type in ("INT", "FLOAT"):
        if "min" in spec.options and value < spec.options["min"]:
            return None, f"{value} is smaller than the minimum {spec.options['min']}"
        if "max" in spec.options and value > spec.options["max"]:
            return None, f"{value} is bigger than the maximum {spec.options['max']}"
    if spec.is_combo and check_choices:
        choices = spec.combo_options
        if value not in choices:
            shown = ", ".join(map(str, choices[:8])) + (", …" if len(choices) > 8 else "")
            return None, f"{_short(value)} is not one of the choices ({shown or 'none available'})"
    return value, None


class GraphExecutor:
    """Executes API-format graphs against `registry` ({class_type: node class}).

    `listener(event, data)` receives ComfyUI-like events: execution_start, execution_cached
    {"nodes"}, executing {"node"}, progress {"node", "value", "max"}, executed {"node",
    "output"}, execution_success, execution_interrupted {"node"}, execution_error {"node",
    "message"}.
    """

    def __init__(self, registry: Mapping[str, type], listener: EventListener | None = None, cache: bool = True,
                 inference_mode: bool = True):
        self.registry = dict(registry)
        self.listener = listener
        self.cache_enabled = cache
        self.inference_mode = inference_mode
        self._cache: dict[str, tuple[str, tuple, dict | None]] = {}
        self._instances: dict[str, tuple[str, Any]] = {}

    # ------------------------------------------------------------------------------ public

    def validate(self, prompt: Mapping, outputs: list[str] | None = None) -> list[str]:
        """Checks the graph; returns the ids of the nodes to run in execution order, or raises
        GraphValidationError."""
        prompt = self._normalise_prompt(prompt)
        targets = self._output_nodes(prompt, outputs)
        order = self._topological_order(prompt, targets)
        problems: list[tuple[str, str, str | None, str]] = []
        for node_id in order:
            problems.extend(self._validate_node(prompt, node_id))
        if problems:
            node_id, class_type, input_name, message = problems[0]
            more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
            where = f"{_label(node_id, class_type)}, input {input_name!r}" if input_name else _label(node_id, class_type)
            raise GraphValidationError(f"{where}: {message}{more}", node_id, class_type, input_name,
                                       [f"{_label(n, c)}{f', input {i!r}' if i else ''}: {m}" for n, c, i, m in problems])
        return order

    def execute(self, prompt: Mapping, outputs: list[str] | None = None) -> ExecutionResult:
        """Validates and runs the graph; returns the collected results (see ExecutionResult)."""
        prompt = self._normalise_prompt(prompt)
        order = self.validate(prompt, outputs)
        started = time.perf_counter()
        context.clear_interrupt()
        result = ExecutionResult()
        signatures: dict[str, str] = {}
        self._emit("execution_start", {})
        cached_now = []
        for node_id in order:
            signatures[node_id] = self._signature(prompt, node_id, signatures)
            cached = self._cache.get(node_id)
            if self.cache_enabled and cached is not None and cached[0] == signatures[node_id]:
                cached_now.append(node_id)
        if cached_now:
            self._emit("execution_cached", {"nodes": cached_now})

        previous_listener, previous_node = context.current().progress_listener, context.current().current_node
        try:
            for node_id in order:
                if context.interrupt_requested():
                    raise GraphInterrupted(None)
                cached = self._cache.get(node_id)
                if node_id in cached_now and cached is not None:
                    _, values, ui = cached
                    result.cached.append(node_id)
                else:
                    values, ui = self._run_node(prompt, node_id, result)
                    self._cache[node_id] = (signatures[node_id], values, ui)
                    result.executed.append(node_id)
                result.outputs[node_id] = values
                if ui:
                    result.ui[node_id] = ui
        except GraphInterrupted as interrupted:
            self._emit("execution_interrupted", {"node": interrupted.node_id})
            raise
        finally:
            context.configure(progress_listener=previous_listener, current_node=previous_node)
        self._drop_stale_cache(prompt)
        result.seconds = time.perf_counter() - started
        self._emit("executing", {"node": None})
        self._emit("execution_success", {})
        return result

    def clear_cache(self) -> None:
        self._cache.clear()
        self._instances.clear()

    # ------------------------------------------------------------------------------ graph

    def _emit(self, event: str, data: dict) -> None:
        if self.listener is not None:
            self.listener(event, data)

    @staticmethod
    def _normalise_prompt(prompt: Mapping) -> dict[str, dict]:
        if not isinstance(prompt, Mapping) or not prompt:
            raise GraphValidationError("the workflow has no nodes; give an API-format workflow ({\"id\": {\"class_type\", \"inputs\"}})")
        if "nodes" in prompt and "links" in prompt:
            raise GraphValidationError("this is a UI-format workflow; export it in API format (or use the *_api.json file)")
        normalised = {}
        for node_id, node in prompt.items():
            node_id = str(node_id)
            if not isinstance(node, Mapping) or "class_type" not in node:
                raise GraphValidationError(f"{_label(node_id, None)}: has no class_type; the file is not an API-format workflow",
                                           node_id)
            inputs = node.get("inputs") or {}
            if not isinstance(inputs, Mapping):
                raise GraphValidationError(f"{_label(node_id, node['class_type'])}: inputs must be an object", node_id, node["class_type"])
            normalised[node_id] = {**node, "inputs": dict(inputs)}
        return normalised

    def _output_nodes(self, prompt: dict[str, dict], outputs: list[str] | None) -> list[str]:
        if outputs is not None:
            missing = [str(o) for o in outputs if str(o) not in prompt]
            if missing:
                raise GraphValidationError(f"{_label(missing[0], None)}: requested as an output but not in the workflow", missing[0])
            return [str(o) for o in outputs]
        targets = []
        for node_id, node in prompt.items():
            node_class = self.registry.get(node["class_type"])
            if node_class is None:
                raise GraphValidationError(f"{_label(node_id, node['class_type'])}: unknown node type; is its node pack installed?",
                                           node_id, node["class_type"])
            if getattr(node_class, "OUTPUT_NODE", False) is True:
                targets.append(node_id)
        if not targets:
            raise GraphValidationError("the workflow has no output node (e.g. a save node), so nothing would run")
        return sorted(targets, key=_node_sort_key)

    def _topological_order(self, prompt: dict[str, dict], targets: list[str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(node_id: str, path: list[str]) -> None:
            if state.get(node_id) == 2:
                return
            if state.get(node_id) == 1:
                cycle = " → ".join(path[path.index(node_id):] + [node_id])
                raise GraphValidationError(f"{_label(node_id, prompt[node_id]['class_type'])}: the graph has a cycle ({cycle})",
                                           node_id, prompt[node_id]["class_type"])
            state[node_id] = 1
            node = prompt[node_id]
            for input_name, value in sorted(node["inputs"].items()):
                if is_link(value):
                    upstream = str(value[0])
                    if upstream not in prompt:
                        raise GraphValidationError(
                            f"{_label(node_id, node['class_type'])}, input {input_name!r}: linked to node {upstream}, "
                            "which is not in the workflow", node_id, node["class_type"], input_name)
                    visit(upstream, path + [node_id])
            state[node_id] = 2
            order.append(node_id)

        for target in targets:
            visit(target, [])
        return order

    def _validate_node(self, prompt: dict[str, dict], node_id: str) -> list[tuple[str, str, str | None, str]]:
        node = prompt[node_id]
        class_type = node["class_type"]
        node_class = self.registry.get(class_type)
        if node_class is None:
            return [(node_id, class_type, None, "unknown node type; is its node pack installed?")]
        problems = []
        for flag in ("INPUT_IS_LIST",):
            if getattr(node_class, flag, False):
                problems.append((node_id, class_type, None, f"{flag} nodes are not supported by the headless runner"))
        if any(getattr(node_class, "OUTPUT_IS_LIST", ()) or ()):
            problems.append((node_id, class_type, None, "OUTPUT_IS_LIST nodes are not supported by the headless runner"))
        try:
            specs = input_specs(node_class)
        except Exception as error:  # noqa: BLE001  a broken INPUT_TYPES is the node's fault, reported as such
            return [(node_id, class_type, None, f"INPUT_TYPES failed: {error}")]
        inputs = node["inputs"]
        custom_checked = self._custom_validated_inputs(node_class)
        for name, spec in specs.items():
            if spec.category == "hidden":
                continue
            if spec.options.get("lazy"):
                problems.append((node_id, class_type, name, "lazy inputs are not supported by the headless runner"))
                continue
            if name not in inputs:
                if spec.category == "required" and not self._has_default(spec):
                    kind = "a link" if not spec.is_widget else "a value"
                    problems.append((node_id, class_type, name, f"required input is missing; connect {kind} of type {spec.type if not spec.is_combo else 'COMBO'}"))
                continue
            value = inputs[name]
            if is_link(value):
                upstream = prompt[str(value[0])]
                upstream_class = self.registry.get(upstream["class_type"])
                if upstream_class is None:
                    continue  # reported on the upstream node itself
                returns = tuple(getattr(upstream_class, "RETURN_TYPES", ()))
                if not 0 <= value[1] < len(returns):
                    problems.append((node_id, class_type, name,
                                     f"linked to output {value[1]} of node {value[0]} ({upstream['class_type']}), which has {len(returns)} output(s)"))
                    continue
                expected = "COMBO" if spec.is_combo and not isinstance(spec.type, str) else spec.type
                if not types_compatible(returns[value[1]], expected):
                    problems.append((node_id, class_type, name,
                                     f"expects {expected} but is linked to {returns[value[1]]} (output {value[1]} of node {value[0]}, {upstream['class_type']})"))
                continue
            if isinstance(value, (list, tuple)):
                problems.append((node_id, class_type, name, f"bad link {_short(value)}; a link is [node_id, output_index]"))
                continue
            if not spec.is_widget:
                problems.append((node_id, class_type, name, f"expects a link from a node giving {spec.type}, got the value {_short(value)}"))
                continue
            _, problem = _convert_widget(spec, value, check_choices=name not in custom_checked)
            if problem:
                problems.append((node_id, class_type, name, problem))
        if not problems and hasattr(node_class, "VALIDATE_INPUTS"):
            problems.extend(self._node_validation(node_class, node_id, class_type, inputs, specs))
        return problems

    def _node_validation(self, node_class: type, node_id: str, class_type: str, inputs: dict,
                         specs: dict[str, _InputSpec]) -> list[tuple[str, str, str | None, str]]:
        """The node's own VALIDATE_INPUTS, as ComfyUI calls it: with the literal values of the
        inputs it names (defaults where left out; not called while one of them is a link),
        returning True or a message. Files and paths are checked here, before anything runs."""
        validate = node_class.VALIDATE_INPUTS
        values = {}
        for name, parameter in inspect.signature(validate).parameters.items():
            spec = specs.get(name)
            if spec is None or (name in inputs and is_link(inputs[name])):
                if parameter.default is inspect.Parameter.empty:
                    return []
                continue
            if name in inputs:
                # The node judges these names itself (a file combo also takes typed paths).
                values[name], _ = _convert_widget(spec, inputs[name], check_choices=False)
            elif self._has_default(spec):
                values[name] = self._default(spec)
        try:
            verdict = validate(**values)
        except Exception as error:  # noqa: BLE001  a failing check is reported as the node's problem
            verdict = str(error) or type(error).__name__
        if verdict is True:
            return []
        message = str(verdict).strip().splitlines()[0] if str(verdict).strip() else "its inputs were refused"
        named = list(values)
        return [(node_id, class_type, named[0] if len(named) == 1 else None, message)]

    @staticmethod
    def _custom_validated_inputs(node_class: type) -> set[str]:
        """Inputs a node's VALIDATE_INPUTS takes: ComfyUI skips their combo check and lets the
        node judge them (a file combo that also accepts typed paths)."""
        validate = getattr(node_class, "VALIDATE_INPUTS", None)
        if validate is None:
            return set()
        return {name for name, parameter in inspect.signature(validate).parameters.items()
                if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}

    @staticmethod
    def _has_default(spec: _InputSpec) -> bool:
        return "default" in spec.options or (spec.is_combo and bool(spec.combo_options))

    @staticmethod
    def _default(spec: _InputSpec):
        if "default" in spec.options:
            return spec.options["default"]
        return spec.combo_options[0]

    def _signature(self, prompt: dict[str, dict], node_id: str, signatures: dict[str, str]) -> str:
        node = prompt[node_id]
        node_class = self.registry[node["class_type"]]
        parts: dict[str, Any] = {}
        for name, value in sorted(node["inputs"].items()):
            parts[name] = ["link", signatures[str(value[0])], value[1]] if is_link(value) else ["value", value]
        is_changed = getattr(node_class, "IS_CHANGED", None)
        changed = None
        if is_changed is not None:
            try:
                changed = is_changed(**self._widget_values(prompt, node_id))
            except Exception as error:  # noqa: BLE001  as in ComfyUI, a failing IS_CHANGED forces a re-run
                changed = f"error {error} {time.time()}"
            if isinstance(changed, float) and math.isnan(changed):
                changed = f"nan {time.time()}"
        return json.dumps([node["class_type"], parts, repr(changed)], sort_keys=True, default=repr)

    def _widget_values(self, prompt: dict[str, dict], node_id: str) -> dict:
        node = prompt[node_id]
        values = {}
        for name, spec in input_specs(self.registry[node["class_type"]]).items():
            if spec.category == "hidden" or not spec.is_widget:
                continue
            if name in node["inputs"] and not is_link(node["inputs"][name]):
                values[name], _ = _convert_widget(spec, node["inputs"][name])
            elif name not in node["inputs"] and self._has_default(spec):
                values[name] = self._default(spec)
        return values

    def _drop_stale_cache(self, prompt: dict[str, dict]) -> None:
        for node_id in list(self._cache):
            if node_id not in prompt:
                del self._cache[node_id]
                self._instances.pop(node_id, None)

    # ------------------------------------------------------------------------------ running

    def _gather_inputs(self, prompt: dict[str, dict], node_id: str, results: ExecutionResult) -> dict:
        node = prompt[node_id]
        kwargs = {}
        custom_checked = self._custom_validated_inputs(self.registry[node["class_type"]])
        for name, spec in input_specs(self.registry[node["class_type"]]).items():
            if spec.category == "hidden":
                hidden = spec.type
                if hidden == "UNIQUE_ID":
                    kwargs[name] = node_id
                elif hidden == "PROMPT":
                    kwargs[name] = prompt
                elif hidden in _HIDDEN_VALUES:
                    kwargs[name] = None
                continue
            if name in node["inputs"]:
                value = node["inputs"][name]
                if is_link(value):
                    kwargs[name] = results.outputs[str(value[0])][value[1]]
                else:
                    kwargs[name], _ = _convert_widget(spec, value, check_choices=name not in custom_checked)
            elif spec.category == "required":
                kwargs[name] = self._default(spec)
        return kwargs

    def _instance(self, node_id: str, class_type: str):
        held = self._instances.get(node_id)
        if held is None or held[0] != class_type:
            held = (class_type, self.registry[class_type]())
            self._instances[node_id] = held
        return held[1]

    def _run_node(self, prompt: dict[str, dict], node_id: str, results: ExecutionResult) -> tuple[tuple, dict | None]:
        class_type = prompt[node_id]["class_type"]
        node_class = self.registry[class_type]
        kwargs = self._gather_inputs(prompt, node_id, results)

        def forward_progress(value: int, total: int, reporting_node: str | None) -> None:
            self._emit("progress", {"node": reporting_node or node_id, "value": value, "max": total})

        context.configure(progress_listener=forward_progress, current_node=node_id)
        self._emit("executing", {"node": node_id})
        try:
            instance = self._instance(node_id, class_type)
            with _inference_mode(self.inference_mode):
                returned = getattr(instance, node_class.FUNCTION)(**kwargs)
        except context.ProcessingInterrupted:
            raise GraphInterrupted(node_id, class_type) from None
        except Exception as error:
            # ComfyUI's interrupt (when its modules are present) and a pipeline's cancellation
            if type(error).__name__ in ("InterruptProcessingException", "PipelineCancelled"):
                raise GraphInterrupted(node_id, class_type) from None
            self._emit("execution_error", {"node": node_id, "message": str(error)})
            raise NodeExecutionError(node_id, class_type, error) from error
        values, ui = self._split_return(node_id, class_type, node_class, returned)
        if ui:
            self._emit("executed", {"node": node_id, "output": ui})
        return values, ui

    @staticmethod
    def _split_return(node_id: str, class_type: str, node_class: type, returned) -> tuple[tuple, dict | None]:
        ui = None
        if isinstance(returned, dict):
            ui = returned.get("ui")
            values = returned.get("result", ())
        else:
            values = returned
        if values is None:
            values = ()
        if not isinstance(values, (tuple, list)):
            raise NodeExecutionError(node_id, class_type, TypeError(
                f"{node_class.FUNCTION} returned {type(values).__name__}, not a tuple of outputs"))
        expected = len(getattr(node_class, "RETURN_TYPES", ()))
        if len(values) != expected and not (expected == 0 and len(values) == 0):
            raise NodeExecutionError(node_id, class_type, TypeError(
                f"{node_class.FUNCTION} returned {len(values)} value(s) but RETURN_TYPES declares {expected}"))
        return tuple(values), ui


def _inference_mode(enabled: bool):
    """torch.inference_mode() around node code, as ComfyUI runs it (when torch is installed)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    try:
        import torch
    except ImportError:
        return contextlib.nullcontext()
    return torch.inference_mode()


def _node_sort_key(node_id: str):
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)
