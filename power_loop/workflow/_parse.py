"""The strict workflow grammar: one pass builds the tree and collects *every* problem with its path.

A second look at the collected ids and references checks what one node cannot see alone: ids are
unique, references name an agent (or an aggregating foreach) that exists, ``.key`` references need an
``output_schema``, and a reference never reaches into a foreach/loop body from outside it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..agents import AgentSpec
from ..errors import AgentSpecError
from ._errors import SpecProblem
from ._nodes import (
    MAX_LOOP_ITERATIONS,
    ON_ERROR,
    UNTIL_OPS,
    AgentNode,
    BranchNode,
    ForeachNode,
    LoopNode,
    LoopUntil,
    ParallelNode,
    RetryPolicy,
    SequenceNode,
    WorkflowBudget,
    WorkflowNode,
)

__all__ = ["SpecParts", "check_spec"]

ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
VAR_RE = re.compile(r"[A-Za-z_]\w*")
MAX_DEPTH = 24
MAX_ITEMS = 1000
_NODE_KEYS: dict[str, frozenset[str]] = {
    "agent": frozenset(
        {"type", "id", "spec", "input", "inputs_from", "output_schema", "retry", "continue_on_error"}
    ),
    "sequence": frozenset({"type", "id", "steps"}),
    "parallel": frozenset({"type", "id", "branches", "max_concurrency", "on_error"}),
    "foreach": frozenset(
        {"type", "id", "as", "items_from", "items", "body", "parallel", "max_concurrency", "on_error"}
    ),
    "branch": frozenset({"type", "id", "on", "cases", "default"}),
    "loop": frozenset({"type", "id", "body", "until", "max_iterations", "on_exhausted"}),
}
_TOP_KEYS = frozenset({"name", "root", "input", "budget", "metadata", "timeout_s"})
MAX_TIMEOUT_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class _Target:
    path: str
    kind: str  # "agent" | "foreach" | other container
    scope: tuple[str, ...]  # paths of the enclosing foreach/loop nodes, outermost first
    has_schema: bool


@dataclass(frozen=True, slots=True)
class _Ref:
    path: str
    ref: str
    scope: tuple[str, ...]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


class _Parser:
    def __init__(self) -> None:
        self.problems: list[SpecProblem] = []
        self.targets: dict[str, _Target] = {}
        self.refs: list[_Ref] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(path, message))

    def keys(self, obj: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.bad(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def opt(
        self, obj: Mapping[str, Any], key: str, path: str, check: Callable[[Any], bool], want: str
    ) -> Any:
        """``obj[key]`` if absent (None) or valid; a problem (and None) otherwise."""
        if key not in obj:
            return None
        value = obj[key]
        if not check(value):
            self.bad(f"{path}.{key}", f"must be {want}, got {json.dumps(value, default=repr)[:60]}")
            return None
        return value

    # -- top level -------------------------------------------------------------------------------

    def spec(self, data: Any) -> SpecParts | None:
        if not isinstance(data, Mapping):
            self.bad("$", f"a workflow spec must be an object, got {type(data).__name__}")
            return None
        self.keys(data, _TOP_KEYS, "$")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.bad("$.name", "is required: a non-empty string")
        text = self.opt(data, "input", "$", lambda v: isinstance(v, str), "a string")
        budget = self.budget(data["budget"], "$.budget") if "budget" in data else None
        metadata = self.opt(data, "metadata", "$", lambda v: isinstance(v, Mapping), "an object")
        timeout = self.opt(
            data,
            "timeout_s",
            "$",
            lambda v: _is_num(v) and 0 < v <= MAX_TIMEOUT_S,
            f"a number in (0, {MAX_TIMEOUT_S}]",
        )
        root = None
        if "root" not in data:
            self.bad("$.root", "is required: the root node")
        else:
            root = self.node(data["root"], "$.root", (), 0)
        self.cross_check()
        if self.problems or root is None:
            return None
        return (
            str(name),
            root,
            text or "",
            budget,
            dict(metadata or {}),
            None if timeout is None else float(timeout),
        )

    def budget(self, data: Any, path: str) -> WorkflowBudget | None:
        if not isinstance(data, Mapping):
            self.bad(path, "must be an object {max_tokens, stop_at_remaining_pct}")
            return None
        before = len(self.problems)
        self.keys(data, frozenset({"max_tokens", "stop_at_remaining_pct"}), path)
        max_tokens: Any = data.get("max_tokens")
        if not _is_int(max_tokens) or max_tokens <= 0:
            self.bad(f"{path}.max_tokens", "is required: an integer > 0")
        pct = self.opt(
            data, "stop_at_remaining_pct", path, lambda v: _is_num(v) and 0 <= v <= 100, "a number in 0..100"
        )
        if len(self.problems) > before:
            return None
        return WorkflowBudget(int(max_tokens), float(pct or 0.0))

    # -- nodes -----------------------------------------------------------------------------------

    def node(self, data: Any, path: str, scope: tuple[str, ...], depth: int) -> WorkflowNode | None:
        if depth > MAX_DEPTH:
            self.bad(path, f"nesting deeper than {MAX_DEPTH} levels")
            return None
        if not isinstance(data, Mapping):
            self.bad(path, f"a node must be an object, got {type(data).__name__}")
            return None
        kind = data.get("type")
        if kind not in _NODE_KEYS:
            self.bad(
                f"{path}.type",
                f"must be one of {', '.join(_NODE_KEYS)}, got {json.dumps(kind, default=repr)[:40]}",
            )
            return None
        before = len(self.problems)
        self.keys(data, _NODE_KEYS[kind], path)
        node_id = self.node_id(data, path, kind, scope, required=kind in ("agent", "loop"))
        build = getattr(self, f"n_{kind}")
        node: WorkflowNode | None = build(data, path, node_id, scope, depth)
        return node if len(self.problems) == before else None

    def node_id(
        self, data: Mapping[str, Any], path: str, kind: str, scope: tuple[str, ...], *, required: bool
    ) -> str | None:
        if "id" not in data:
            if required:
                self.bad(f"{path}.id", "is required: a unique node id")
            return None
        node_id = data["id"]
        if not isinstance(node_id, str) or not ID_RE.fullmatch(node_id):
            self.bad(
                f"{path}.id",
                "must be an identifier of letters, digits, '_' or '-' (not starting with a digit)",
            )
            return None
        if node_id in self.targets:
            self.bad(f"{path}.id", f"duplicate id {node_id!r} (first at {self.targets[node_id].path})")
            return node_id
        has_schema = kind == "agent" and isinstance(data.get("output_schema"), Mapping)
        self.targets[node_id] = _Target(path, kind, scope, has_schema)
        return node_id

    def n_agent(
        self, d: Mapping[str, Any], path: str, node_id: str | None, scope: tuple[str, ...], depth: int
    ) -> AgentNode | None:
        spec = self.agent_spec(d.get("spec"), f"{path}.spec", "spec" in d)
        text = self.opt(d, "input", path, lambda v: isinstance(v, str), "a string template")
        inputs_from = self.ref_list(d, "inputs_from", path, scope)
        schema = (
            self.output_schema(d["output_schema"], f"{path}.output_schema") if "output_schema" in d else None
        )
        retry = self.retry(d["retry"], f"{path}.retry") if "retry" in d else None
        tolerant = self.opt(d, "continue_on_error", path, lambda v: isinstance(v, bool), "true or false")
        if spec is None or node_id is None:
            return None
        if schema is not None:
            spec = AgentSpec.from_dict({**spec.to_dict(), "output_schema": schema})
        text = "{{input}}" if text is None else text
        return AgentNode(node_id, spec, text, inputs_from, schema, retry, bool(tolerant))

    def agent_spec(self, data: Any, path: str, present: bool) -> AgentSpec | None:
        if not present:
            self.bad(path, "is required: an AgentSpec object {name, system_prompt, ...}")
            return None
        if not isinstance(data, Mapping):
            self.bad(path, "must be an AgentSpec object {name, system_prompt, ...}")
            return None
        missing = [k for k in ("name", "system_prompt") if k not in data]
        for key in missing:  # AgentSpec itself stops at the first problem: list these all
            self.bad(f"{path}.{key}", "is required: a non-empty string")
        if missing:
            return None
        try:
            return AgentSpec.from_dict(data)
        except AgentSpecError as exc:
            where = f"{path}.{exc.field}" if exc.field else path
            self.bad(where, str(exc))
            return None

    def ref_list(self, d: Mapping[str, Any], key: str, path: str, scope: tuple[str, ...]) -> tuple[str, ...]:
        value = self.opt(
            d,
            key,
            path,
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "a list of node ids",
        )
        for i, ref in enumerate(value or ()):
            self.refs.append(_Ref(f"{path}.{key}[{i}]", ref, scope))
        return tuple(value or ())

    def output_schema(self, data: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(data, Mapping):
            self.bad(path, "must be an object {name, schema}")
            return None
        self.keys(data, frozenset({"name", "schema"}), path)
        name, schema = data.get("name"), data.get("schema")
        if not isinstance(name, str) or not name.strip():
            self.bad(f"{path}.name", "is required: a non-empty string")
        if not isinstance(schema, Mapping):
            self.bad(f"{path}.schema", "is required: a JSON Schema object")
        return {"name": name, "schema": dict(schema)} if isinstance(schema, Mapping) else None

    def retry(self, data: Any, path: str) -> RetryPolicy | None:
        if not isinstance(data, Mapping):
            self.bad(path, "must be an object {max_attempts, backoff_s, multiplier}")
            return None
        self.keys(data, frozenset({"max_attempts", "backoff_s", "multiplier"}), path)
        attempts = self.opt(
            data, "max_attempts", path, lambda v: _is_int(v) and 1 <= v <= 10, "an integer in 1..10"
        )
        backoff = self.opt(
            data, "backoff_s", path, lambda v: _is_num(v) and 0 <= v <= 600, "a number in 0..600"
        )
        mult = self.opt(data, "multiplier", path, lambda v: _is_num(v) and 1 <= v <= 10, "a number in 1..10")
        return RetryPolicy(
            attempts if attempts is not None else 1,
            float(backoff if backoff is not None else 1.0),
            float(mult if mult is not None else 2.0),
        )

    def children(
        self, d: Mapping[str, Any], key: str, path: str, scope: tuple[str, ...], depth: int
    ) -> tuple[WorkflowNode, ...]:
        items = d.get(key)
        if not isinstance(items, list) or not items:
            self.bad(f"{path}.{key}", "is required: a non-empty list of nodes")
            return ()
        built = [self.node(item, f"{path}.{key}[{i}]", scope, depth + 1) for i, item in enumerate(items)]
        return tuple(n for n in built if n is not None)

    def n_sequence(
        self, d: Mapping[str, Any], path: str, node_id: str | None, scope: tuple[str, ...], depth: int
    ) -> SequenceNode:
        return SequenceNode(self.children(d, "steps", path, scope, depth), node_id)

    def fanout(self, d: Mapping[str, Any], path: str) -> tuple[int, str]:
        limit = self.opt(
            d, "max_concurrency", path, lambda v: _is_int(v) and 1 <= v <= 100, "an integer in 1..100"
        )
        on_error = self.opt(d, "on_error", path, lambda v: v in ON_ERROR, f"one of {', '.join(ON_ERROR)}")
        return (limit if limit is not None else 5), (on_error or "halt")

    def n_parallel(
        self, d: Mapping[str, Any], path: str, node_id: str | None, scope: tuple[str, ...], depth: int
    ) -> ParallelNode:
        branches = self.children(d, "branches", path, scope, depth)
        return ParallelNode(branches, node_id, *self.fanout(d, path))

    def n_foreach(
        self, d: Mapping[str, Any], path: str, node_id: str | None, scope: tuple[str, ...], depth: int
    ) -> ForeachNode | None:
        as_var = d.get("as")
        if not isinstance(as_var, str) or not VAR_RE.fullmatch(as_var):
            self.bad(f"{path}.as", "is required: the item variable's name (an identifier)")
        has_from, has_items = "items_from" in d, "items" in d
        if has_from == has_items:
            self.bad(path, "needs exactly one of items_from (a 'node_id.key' reference) or items (a list)")
        items_from = self.opt(
            d, "items_from", path, lambda v: isinstance(v, str) and bool(v), "a reference 'node_id.key'"
        )
        if items_from is not None:
            self.refs.append(_Ref(f"{path}.items_from", items_from, scope))
        items = self.opt(
            d,
            "items",
            path,
            lambda v: isinstance(v, list) and len(v) <= MAX_ITEMS,
            f"a list of at most {MAX_ITEMS} items",
        )
        parallel = self.opt(d, "parallel", path, lambda v: isinstance(v, bool), "true or false")
        limit, on_error = self.fanout(d, path)
        body = None
        if "body" not in d:
            self.bad(f"{path}.body", "is required: the node run for each item")
        else:
            body = self.node(d["body"], f"{path}.body", (*scope, path), depth + 1)
        if body is None or not isinstance(as_var, str):
            return None
        return ForeachNode(
            as_var,
            body,
            node_id,
            items_from,
            None if items is None else tuple(items),
            parallel is not False,
            limit,
            on_error,
        )

    def n_branch(
        self, d: Mapping[str, Any], path: str, node_id: str | None, scope: tuple[str, ...], depth: int
    ) -> BranchNode | None:
        on = self.opt(
            d, "on", path, lambda v: isinstance(v, str) and bool(v), "a reference 'node_id' or 'node_id.key'"
        )
        if "on" not in d:
            self.bad(f"{path}.on", "is required: a reference 'node_id' or 'node_id.key'")
        elif on is not None:
            self.refs.append(_Ref(f"{path}.on", on, scope))
        cases = d.get("cases")
        built: dict[str, WorkflowNode] = {}
        if not isinstance(cases, Mapping) or not cases:
            self.bad(f"{path}.cases", "is required: a non-empty object mapping values to nodes")
        else:
            for key, value in cases.items():
                node = self.node(value, f"{path}.cases.{key}", scope, depth + 1)
                if node is not None:
                    built[str(key)] = node
        default = self.node(d["default"], f"{path}.default", scope, depth + 1) if "default" in d else None
        return None if on is None else BranchNode(on, built, node_id, default)

    def n_loop(
        self, d: Mapping[str, Any], path: str, node_id: str | None, scope: tuple[str, ...], depth: int
    ) -> LoopNode | None:
        inner = (*scope, path)
        until = self.until(d.get("until"), f"{path}.until", "until" in d, inner)
        limit = self.opt(
            d,
            "max_iterations",
            path,
            lambda v: _is_int(v) and 1 <= v <= MAX_LOOP_ITERATIONS,
            f"an integer in 1..{MAX_LOOP_ITERATIONS}",
        )
        exhausted = self.opt(
            d, "on_exhausted", path, lambda v: v in ("fail", "continue"), "'fail' or 'continue'"
        )
        body = None
        if "body" not in d:
            self.bad(f"{path}.body", "is required: the node run on each iteration")
        else:
            body = self.node(d["body"], f"{path}.body", inner, depth + 1)
        if body is None or until is None or node_id is None:
            return None
        return LoopNode(node_id, body, until, limit if limit is not None else 3, exhausted or "fail")

    def until(self, data: Any, path: str, present: bool, scope: tuple[str, ...]) -> LoopUntil | None:
        if not present or not isinstance(data, Mapping):
            self.bad(path, "is required: an object {ref, op, value}")
            return None
        self.keys(data, frozenset({"ref", "op", "value"}), path)
        ref = data.get("ref")
        if not isinstance(ref, str) or not ref:
            self.bad(f"{path}.ref", "is required: a reference 'node_id' or 'node_id.key'")
            ref = None
        else:
            self.refs.append(_Ref(f"{path}.ref", ref, scope))
        op = self.opt(data, "op", path, lambda v: v in UNTIL_OPS, f"one of {', '.join(UNTIL_OPS)}")
        if ref is None:
            return None
        return LoopUntil(ref, op or "eq", data.get("value"))

    # -- references --------------------------------------------------------------------------------

    def cross_check(self) -> None:
        for ref in self.refs:
            node_id, _, key = ref.ref.partition(".")
            target = self.targets.get(node_id)
            if target is None:
                self.bad(ref.path, f"references unknown node id {node_id!r}")
            elif target.kind not in ("agent", "foreach"):
                self.bad(
                    ref.path, f"{node_id!r} is a {target.kind} node: references name an agent or foreach"
                )
            elif ref.scope[: len(target.scope)] != target.scope:
                self.bad(ref.path, f"{node_id!r} runs inside a foreach/loop body this node is not part of")
            elif key and target.kind == "agent" and not target.has_schema:
                self.bad(ref.path, f"{ref.ref!r} reads a payload key, but {node_id!r} has no output_schema")
            elif key and target.kind == "foreach" and key != "items":
                self.bad(ref.path, f"a foreach result has only the key 'items', not {key!r}")


SpecParts = tuple[str, WorkflowNode, str, WorkflowBudget | None, dict[str, Any], float | None]
"""What a valid spec is made of: name, root, input, budget, metadata, timeout_s."""


def check_spec(payload: str | bytes | Mapping[str, Any]) -> tuple[SpecParts | None, list[SpecProblem]]:
    """Parse JSON text or a dict: the spec's parts (None when invalid) and every problem found."""
    data: Any = payload
    if isinstance(payload, (str, bytes)):
        try:
            data = json.loads(payload)
        except (TypeError, ValueError) as exc:
            return None, [SpecProblem("$", f"not valid JSON: {exc}")]
    parser = _Parser()
    return parser.spec(data), parser.problems
