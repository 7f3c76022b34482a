"""Representations: verbatim and projected rendering of finished sends, and message validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from power_loop.context import (
    CompactView,
    ProjectedRepresentation,
    ProjectedRow,
    ProjectedSend,
    ProjectMessageRow,
    Representation,
    SendView,
    VerbatimRepresentation,
    check_messages,
    estimate_text_tokens,
)
from power_loop.errors import ConfigError
from power_loop.store import MessageRow, MessageState
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


def _rows(send: SendView, *, first_seq: int) -> list[MessageRow]:
    rows = [
        MessageRow(
            session_id="s",
            seq=first_seq + i,
            role=m["role"],
            name=m.get("name"),
            content=m.get("content"),
            tool_calls=m.get("tool_calls"),
            tool_call_id=m.get("tool_call_id"),
            round_index=0,
            state=MessageState.ACTIVE,
            meta={},
            created_at=0,
            send_index=send.send_index,
        )
        for i, m in enumerate(send.messages)
    ]
    return rows[::-1]  # any order: project_send orders by seq


@pytest.mark.parametrize("rep", [VerbatimRepresentation(), ProjectedRepresentation(max_chars=40)])
def test_published_project_send_and_render_show_what_render_send_shows(rep: Any) -> None:
    projected = rep.project_send(_rows(SEND, first_seq=10), send_index=3, tool_registry=None)
    assert isinstance(projected, ProjectedSend)
    assert (projected.source_seq_lo, projected.source_seq_hi) == (10, 14)
    (row,) = projected.rows
    assert isinstance(row, ProjectedRow) and row.kind == "project"
    expected = rep.render_send(SEND, tool_registry=None)
    assert rep.render(projected.rows) == expected
    stored = projected.to_rows("s", 3, projector_version=rep.version)
    assert [(r.session_id, r.send_index, r.kind, r.projector_version) for r in stored] == [
        ("s", 3, "project", 1)
    ]
    assert stored[0].token_estimate == estimate_text_tokens(row.rendered_text) > 0
    compact = ProjectMessageRow(
        "s", 2, "compact", {"summary": "set up X"}, None, None, None, 1, 2, 1, None, 0
    )
    # A compact row renders through render_compact; rows render in the order given.
    assert rep.render([compact, *stored]) == rep.render_compact(CompactView("set up X", 1, 2)) + expected


def test_render_refuses_rows_it_cannot_show() -> None:
    rep = VerbatimRepresentation()
    with pytest.raises(ConfigError, match="summary"):
        rep.render([ProjectMessageRow("s", 2, "compact", {}, None, None, None, 1, 2, 1, None, 0)])
    with pytest.raises(ConfigError, match="'project' row without a 'messages' list"):
        rep.render([ProjectedRow("project", {"human": ["hi"]})])
    assert rep.project_send([], send_index=1) == ProjectedSend(
        [ProjectedRow("project", {"messages": []}, "")]
    )
