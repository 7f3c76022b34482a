"""``replay_session``: re-drive a stored conversation against new code, with the stored model replies.

A regression test from production data: the user messages of a stored session are sent again, in
order, to a loop your code builds, while a :class:`ScriptedLLM` plays back the model replies that
were stored. Tools, hooks and context code run for real, so a change in what they produce — a tool
result, a different tool call reaching the model, one more model call — shows up as the first stored
message that the replay does not reproduce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..llm import LLMRequest, LLMService
from ..loop import StatefulAgentLoop
from ..store import MessageRow, open_store
from ._scripted import ScriptedCall, ScriptedLLM, ScriptedTurn, ScriptExhaustedError

#: Builds the loop under test around the replaying model, on the scratch DSN it is given.
LoopFactory = Callable[[LLMService, str], StatefulAgentLoop]


@dataclass(frozen=True)
class ReplayDifference:
    """The first stored message the replay did not reproduce (``None`` on a side: no message there)."""

    send_index: int
    position: int
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None


@dataclass
class ReplayReport:
    """The outcome of :func:`replay_session`."""

    sends: int = 0
    difference: ReplayDifference | None = None
    requests: list[LLMRequest] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every stored message was reproduced."""
        return self.difference is None


def _shape(role: str, content: Any, calls: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    """What a message must keep across a replay: role, content, calls (name and arguments)."""
    shape: dict[str, Any] = {"role": role, "content": content or ""}
    if calls:
        shape["tool_calls"] = [(c["function"]["name"], _parsed(c["function"]["arguments"])) for c in calls]
    return shape


def _parsed(arguments: Any) -> Any:
    try:
        return json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return arguments


def _turn(row: MessageRow) -> ScriptedTurn:
    calls = tuple(
        ScriptedCall(c["function"]["name"], str(c["function"]["arguments"]), c.get("id"))
        for c in row.tool_calls or ()
    )
    content = row.content if isinstance(row.content, str) else ""
    return ScriptedTurn(text=content, calls=calls)


def _conversation(rows: Sequence[MessageRow]) -> list[MessageRow]:
    # Fold summaries and other notes are system rows: the context code re-creates its own.
    return [r for r in rows if r.role != "system"]


async def replay_session(
    dsn: str, session_id: str, loop_factory: LoopFactory, *, table_prefix: str = "pl_"
) -> ReplayReport:
    """Replay the stored session ``session_id`` of ``dsn`` through ``loop_factory(llm, scratch_dsn)``.

    The stored store is opened read-only. Each stored send's user message is sent again on a new
    session (same system prompt) of the factory's loop, which must use the scratch DSN it is given
    (an in-memory SQLite store). The report names the first message that differs, if any.
    """
    source = await open_store(dsn, table_prefix=table_prefix, read_only=True)
    try:
        session = await source.get_session(session_id)
        rows = _conversation(await source.load_all_messages(session_id))
    finally:
        await source.close()
    if session is None:
        raise LookupError(f"no session {session_id!r} in the store")
    llm = ScriptedLLM([_turn(r) for r in rows if r.role == "assistant"])
    report = ReplayReport(requests=llm.requests)
    starts = [
        r
        for i, r in enumerate(rows)
        if r.role == "user" and (i == 0 or r.send_index != rows[i - 1].send_index)
    ]
    async with loop_factory(llm, ":memory:") as loop:
        sid = await loop.new_session(system_prompt=session.system_prompt)
        for start in starts:
            user: Any = (
                start.content if start.name is None else {"content": start.content, "name": start.name}
            )
            try:
                await loop.send(user, sid)
            except ScriptExhaustedError:
                pass  # the new code asked the model more often: the comparison below shows where
            report.sends += 1
            messages = await loop.get_messages(sid, include_compacted=True)
            replayed = [_shape(m["role"], m.get("content"), m.get("tool_calls")) for m in messages]
            expected = [
                _shape(r.role, r.content, r.tool_calls)
                for r in rows
                if (r.send_index or 0) <= (start.send_index or 0)
            ]
            report.difference = _first_difference(
                expected, [m for m in replayed if m["role"] != "system"], start.send_index or 0
            )
            if report.difference is not None:
                break
    return report


def _first_difference(
    expected: Sequence[dict[str, Any]], actual: Sequence[dict[str, Any]], send_index: int
) -> ReplayDifference | None:
    for position in range(max(len(expected), len(actual))):
        want = expected[position] if position < len(expected) else None
        got = actual[position] if position < len(actual) else None
        if want != got:
            return ReplayDifference(send_index, position, want, got)
    return None
