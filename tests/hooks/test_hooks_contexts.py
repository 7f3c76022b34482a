"""Hook ctx dataclasses: one per point, fields and defaults as published, independent instances."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

import power_loop.hooks as hooks_pkg
from power_loop.hooks import CTX_TYPES, BaseHookCtx, HookDirective, HookPoint, TimerFireCtx, ToolBeforeCtx

_LIST: Any = []
_DICT: Any = {}

EXPECTED: dict[HookPoint, tuple[str, dict[str, Any]]] = {
    HookPoint.SESSION_START: ("SessionStartCtx", {"scope": "main", "messages": _LIST, "stop_event": None}),
    HookPoint.SESSION_END: (
        "SessionEndCtx",
        {"scope": "main", "reason": "", "messages": _LIST, "final_text": None},
    ),
    HookPoint.TIMER_FIRE: (
        "TimerFireCtx",
        {"session_id": "", "timer_id": 0, "note": "", "due_at": 0, "message": "", "postpone_s": 0.0},
    ),
    HookPoint.WORKFLOW_STEP_START: (
        "WorkflowStepStartCtx",
        {"run_id": "", "step": "", "node_id": "", "spec": None, "user_input": "", "reason": ""},
    ),
    HookPoint.WORKFLOW_STEP_END: (
        "WorkflowStepEndCtx",
        {"run_id": "", "step": "", "node_id": "", "result": None},
    ),
    HookPoint.ROUND_START: ("RoundStartCtx", {"messages": _LIST, "stop_event": None, "reason": ""}),
    HookPoint.ROUND_END: (
        "RoundEndCtx",
        {"messages": _LIST, "has_tools": False, "response_text": "", "used_todo": False},
    ),
    HookPoint.LLM_BEFORE: (
        "LlmBeforeCtx",
        {
            "messages": _LIST,
            "system_prompt": "",
            "tools": None,
            "max_tokens": 8000,
            "temperature": 0.0,
            "output": None,
            "tool_choice": None,
        },
    ),
    HookPoint.LLM_AFTER: ("LlmAfterCtx", {"messages": _LIST, "output": None}),
    HookPoint.ROUND_DECIDE: (
        "RoundDecideCtx",
        {
            "messages": _LIST,
            "tool_calls": _LIST,
            "assistant_text": "",
            "output": "[skipped by round_decide hook]",
        },
    ),
    HookPoint.TOOLS_BATCH_BEFORE: (
        "ToolsBatchBeforeCtx",
        {"messages": _LIST, "tool_calls": _LIST, "output": "[skipped by batch hook]"},
    ),
    HookPoint.TOOLS_BATCH_AFTER: ("ToolsBatchAfterCtx", {"messages": _LIST, "used_todo": False}),
    HookPoint.TOOL_BEFORE: (
        "ToolBeforeCtx",
        {"tool_call": _DICT, "tool_name": "", "tool_args": _DICT, "output": "[skipped by hook]"},
    ),
    HookPoint.TOOL_AFTER: (
        "ToolAfterCtx",
        {"tool_call": _DICT, "tool_name": "", "tool_args": _DICT, "output": "", "failed": False},
    ),
    HookPoint.TOOL_ERROR: (
        "ToolErrorCtx",
        {
            "tool_call": _DICT,
            "tool_name": "",
            "tool_args": _DICT,
            "error": None,
            "error_message": "",
            "output": "",
        },
    ),
    HookPoint.TOOL_RECONCILE: (
        "ToolReconcileCtx",
        {
            "tool_call": _DICT,
            "tool_name": "",
            "tool_args": _DICT,
            "idempotency_key": "",
            "started_at": 0,
            "output": "",
        },
    ),
    HookPoint.COMPACT_BEFORE: ("CompactBeforeCtx", {"messages": _LIST}),
    HookPoint.COMPACT_AFTER: (
        "CompactAfterCtx",
        {"messages": _LIST, "messages_before_count": 0, "messages_after_count": 0},
    ),
    HookPoint.MESSAGE_APPEND: ("MessageAppendCtx", {"message": _DICT, "session_id": None}),
    HookPoint.MEMORY_RECALLED: (
        "MemoryRecalledCtx",
        {"recalled": _LIST, "session_id": None, "budget_tokens": 1500},
    ),
}


def test_every_point_has_a_ctx_class() -> None:
    assert set(CTX_TYPES) == set(HookPoint) == set(EXPECTED)


@pytest.mark.parametrize("point", list(HookPoint), ids=lambda p: p.value)
def test_ctx_defaults_and_fields(point: HookPoint) -> None:
    name, fields = EXPECTED[point]
    cls = CTX_TYPES[point]
    assert cls.__name__ == name
    assert getattr(hooks_pkg, name) is cls
    assert issubclass(cls, BaseHookCtx)
    ctx = cls()
    assert ctx.round_index == 0
    assert ctx.directive is HookDirective.CONTINUE
    for field_name, default in fields.items():
        value = getattr(ctx, field_name)
        if default is _LIST:
            assert value == []
        elif default is _DICT:
            assert value == {}
        else:
            assert value == default, field_name
    declared = {f.name for f in dataclasses.fields(cls)}
    assert declared == {"round_index", "directive", "session_id", *fields}
    # slots: a typo in a handler (ctx.tool_nmae = ...) fails instead of silently doing nothing
    with pytest.raises(AttributeError):
        setattr(ctx, "not_a_field", 1)  # noqa: B010


@pytest.mark.parametrize("point", list(HookPoint), ids=lambda p: p.value)
def test_mutable_defaults_are_not_shared(point: HookPoint) -> None:
    cls = CTX_TYPES[point]
    a, b = cls(), cls()
    for f in dataclasses.fields(cls):
        value = getattr(a, f.name)
        if isinstance(value, (list, dict)):
            assert value is not getattr(b, f.name)


def test_session_id_is_keyword_on_every_ctx_and_positional_order_kept() -> None:
    for cls in CTX_TYPES.values():
        assert cls(session_id="s1").session_id == "s1"
    ctx = ToolBeforeCtx(2, HookDirective.SKIP, {"id": "c1"}, "read", {"path": "x"})
    assert (ctx.round_index, ctx.directive, ctx.tool_name, ctx.tool_args) == (
        2,
        "skip",
        "read",
        {"path": "x"},
    )
    timer = TimerFireCtx(0, HookDirective.CONTINUE, "sess", 7)
    assert (timer.session_id, timer.timer_id) == ("sess", 7)


def test_hooks_and_events_depend_only_on_stdlib_errors_and_base() -> None:
    # Layer 2: hooks/events may use power_loop.errors, _lazy, base (redaction) and themselves, never llm/store/tools/loop or any
    # third-party package (checked on the import statements, since the package root imports everything).
    root = Path(hooks_pkg.__file__).parent.parent
    stdlib = set(sys.stdlib_module_names)
    for sub in ("hooks", "events"):
        for path in sorted((root / sub).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    mods = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        target = (node.module or "").split(".")[0]
                        ok = (node.level == 1) or (node.level == 2 and target in ("errors", "_lazy", "base"))
                        assert ok, f"{path.name}: from {'.' * node.level}{node.module} import ..."
                        continue
                    mods = [node.module or ""]
                else:
                    continue
                for mod in mods:
                    assert mod.split(".")[0] in stdlib | {"__future__"}, f"{path.name}: {mod}"


def test_public_surface() -> None:
    assert set(hooks_pkg.__all__) == {
        "ALLOWED_DIRECTIVES", "CTX_TYPES", "AgentHooks", "BaseHookCtx", "HookDirective", "HookHandler",
        "HookPoint", "allowed_directives", "resolve_hook_point", "HookContext", "HookResult",
        "HookManagerProtocol", "HookAuditSink",
        *(cls.__name__ for cls in CTX_TYPES.values()),
    }  # fmt: skip
    for name in hooks_pkg.__all__:
        assert getattr(hooks_pkg, name) is not None
