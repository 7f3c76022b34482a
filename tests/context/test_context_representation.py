"""Representations: verbatim and projected rendering of finished sends, and message validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from power_loop.context import (
    CompactView,
    ProjectedRepresentation,
    Representation,
    SendView,
    VerbatimRepresentation,
    check_messages,
)
from power_loop.errors import ConfigError
from power_loop.tools import ToolDefinition, ToolRegistry


def _call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


SEND = SendView(
    3,
    (
        {"role": "user", "content": "please read the config"},
        {
            "role": "assistant",
            "content": "reading",
            "tool_calls": [_call("c1", "read", {"path": "a.toml"}), _call("c2", "grep", {"q": "port"})],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "port = 8080\nhost = x"},
        {"role": "tool", "tool_call_id": "c2", "name": "grep", "content": "a.toml:1: port = 8080"},
        {"role": "assistant", "content": "The port is 8080."},
    ),
)


def test_both_implement_the_protocol() -> None:
    assert isinstance(VerbatimRepresentation(), Representation)
    assert isinstance(ProjectedRepresentation(), Representation)
    assert VerbatimRepresentation.kind == "verbatim" and ProjectedRepresentation.kind == "projection"


def test_verbatim_renders_the_send_as_recorded() -> None:
    rendered = VerbatimRepresentation().render_send(SEND, tool_registry=None)
    assert rendered == list(SEND.messages)
    compact = VerbatimRepresentation().render_compact(CompactView("they set up X", 1, 4))
    assert len(compact) == 1 and compact[0]["role"] == "user"
    assert "#1-#4" in compact[0]["content"] and compact[0]["content"].endswith("they set up X")


def test_projection_is_two_terse_messages() -> None:
    user, assistant = ProjectedRepresentation().render_send(SEND, tool_registry=None)
    assert user == {"role": "user", "content": "[#3] please read the config"}
    assert assistant["role"] == "assistant" and "tool_calls" not in assistant
    text = assistant["content"]
    assert text.startswith("#3 [tools] read(")
    assert 'grep({"q":"port"}) → a.toml:1: port = 8080' in text
    assert text.endswith("\nThe port is 8080.")
    assert check_messages([user, assistant]) is None


def test_projection_uses_tool_project_hooks() -> None:
    registry = ToolRegistry()

    def project_read(args: Mapping[str, Any], result: str | None) -> dict[str, Any]:
        return {"path": args["path"], "lines": (result or "").count("\n") + 1}

    registry.register(ToolDefinition("read", "read a file", project=project_read), lambda path: "")
    registry.register(
        ToolDefinition("grep", "search", project=lambda args, result: f"{args['q']!r}: 1 hit"), lambda q: ""
    )
    _, assistant = ProjectedRepresentation().render_send(SEND, tool_registry=registry)
    assert 'read(path="a.toml", lines=2)' in assistant["content"]
    assert "grep: 'port': 1 hit" in assistant["content"]


def test_faulty_project_hook_falls_back_to_the_default_line() -> None:
    registry = ToolRegistry()

    def broken(args: Mapping[str, Any], result: str | None) -> dict[str, Any]:
        raise RuntimeError("bug")

    registry.register(ToolDefinition("read", "read a file", project=broken), lambda path: "")
    _, assistant = ProjectedRepresentation().render_send(SEND, tool_registry=registry)
    assert 'read({"path":"a.toml"}) → port = 8080 host = x' in assistant["content"]


def test_projection_truncates_and_marks_missing_results() -> None:
    long = SendView(
        7,
        (
            {"role": "user", "content": "q" * 500},
            {"role": "assistant", "content": "", "tool_calls": [_call("c9", "bash", {"cmd": "ls"})]},
            {"role": "tool", "tool_call_id": "c9", "name": "bash", "content": "<aborted: crash>"},
            {"role": "assistant", "content": "z" * 500},
        ),
    )
    rep = ProjectedRepresentation(max_chars=40)
    user, assistant = rep.render_send(long, tool_registry=None)
    assert len(user["content"]) <= len("[#7] ") + 40 and user["content"].endswith("…")
    last_line = assistant["content"].splitlines()[-1]
    assert len(last_line) == 40 and last_line.endswith("…")
    unanswered = SendView(
        2,
        (
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "", "tool_calls": [_call("c1", "t", {})]},
        ),
    )
    _, a2 = ProjectedRepresentation().render_send(unanswered, tool_registry=None)
    assert "<missing>" in a2["content"]
    empty = ProjectedRepresentation().render_send(
        SendView(4, ({"role": "user", "content": ""},)), tool_registry=None
    )
    assert empty == [
        {"role": "user", "content": "[#4] (no text)"},
        {"role": "assistant", "content": "#4 (no output)"},
    ]
    compact = rep.render_compact(CompactView("sum", 2, 2))
    assert compact[0]["content"].startswith("[older sends #2 folded")


def test_projection_rejects_tiny_max_chars() -> None:
    with pytest.raises(ConfigError):
        ProjectedRepresentation(max_chars=5)
    with pytest.raises(ConfigError):
        ProjectedRepresentation(max_chars=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "messages, problem",
    [
        ([{"role": "user", "content": "a"}], None),
        ([{"role": "system", "content": "a"}], "not allowed"),
        ([{"role": "tool", "tool_call_id": "x", "content": "a"}], "no open call"),
        ([{"role": "assistant", "content": "", "tool_calls": [_call("a", "t", {})]}], "have no result"),
        (
            [
                {"role": "assistant", "content": "", "tool_calls": [_call("a", "t", {})]},
                {"role": "user", "content": "a"},
            ],
            "while calls",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [_call("a", "t", {}), _call("a", "t", {})],
                },
            ],
            "duplicate",
        ),
    ],
)
def test_check_messages(messages: list[dict[str, Any]], problem: str | None) -> None:
    found = check_messages(messages)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_check_messages_open_tail() -> None:
    tail = [{"role": "assistant", "content": "", "tool_calls": [_call("a", "t", {})]}]
    assert check_messages(tail, allow_open_tail=True) is None
