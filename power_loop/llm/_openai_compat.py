"""What OpenAI-compatible servers get wrong, and how the chat-completions adapter copes.

Local servers (llama.cpp, and others built the same way) speak the chat-completions wire format with
gaps that a hosted API does not have. Each gap is handled here, once, so a default configuration
works against them:

* a streamed request that offers tools may come back as an *empty* stream when the model answers with
  a tool call: the adapter repeats that request without streaming and remembers the fact for the model
  (:class:`ServerQuirks`);
* ``stream_options`` may be refused with a 400: the adapter drops it and remembers;
* assistant turns carrying tool calls must have ``content: ""`` rather than ``null`` on some servers
  (:func:`wire_messages`);
* tool-call ids may be missing, or repeated across calls and rounds (``call_0`` every time):
  :class:`ToolCallIds` replaces them with generated ids, consistently across a stream's deltas.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ServerQuirks",
    "ToolCallIds",
    "history_call_ids",
    "new_call_id",
    "openai_parts",
    "rejects_stream_options",
    "wire_messages",
]


class ServerQuirks:
    """What one service learned about its server; kept for the life of the service."""

    __slots__ = ("no_stream_options", "no_tool_streaming")

    def __init__(self) -> None:
        # Models whose server sends an empty stream when it should stream tool calls.
        self.no_tool_streaming: set[str] = set()
        # The server answered 400 to ``stream_options``.
        self.no_stream_options = False


def wire_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The message list as sent: an assistant turn with tool calls gets ``content: ""`` for ``None``.

    OpenAI accepts both; several compatible servers reject ``null``. Messages are copied only when
    changed (the caller's history is never mutated).
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if (
            message.get("role") == "assistant"
            and message.get("tool_calls")
            and message.get("content") is None
        ):
            fixed = dict(message)
            fixed["content"] = ""
            out.append(fixed)
        else:
            out.append(message if isinstance(message, dict) else dict(message))
    return out


def rejects_stream_options(status: int | None, message: str) -> bool:
    """Whether an error answer says the server does not take ``stream_options``."""
    return status in (400, 422) and "stream_options" in message


def new_call_id() -> str:
    """A fresh tool-call id in OpenAI's style (unique per call; stored with the message)."""
    return f"call_{secrets.token_hex(12)}"


def history_call_ids(messages: Iterable[Mapping[str, Any]]) -> set[str]:
    """Ids of the tool calls already in a request's history (a server repeating one is replaced)."""
    ids: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or ():
            call_id = call.get("id") if isinstance(call, Mapping) else None
            if isinstance(call_id, str) and call_id:
                ids.add(call_id)
    return ids


class ToolCallIds:
    """Replace missing or repeated tool-call ids with generated ones.

    An id is "repeated" when it is already used in the request's history or by an earlier call of the
    same answer. In a stream the decision is made on the first delta of each call and applied to every
    later delta of that call, so the deltas and the final calls agree.
    """

    __slots__ = ("_by_index", "_by_raw", "_taken")

    def __init__(self, history: set[str]) -> None:
        self._taken = set(history)
        self._by_index: dict[int, tuple[str, str]] = {}  # index -> (id the server sent, id we use)
        self._by_raw: dict[str, str] = {}  # for deltas without an index: server id -> id we use

    def _claim(self, call_id: Any) -> str:
        chosen = (
            call_id if isinstance(call_id, str) and call_id and call_id not in self._taken else new_call_id()
        )
        self._taken.add(chosen)
        return chosen

    def fix_delta(self, delta: dict[str, Any]) -> None:
        """Give a streamed delta (OpenAI shape) its call's final id."""
        sent = delta.get("id")
        raw: str = sent if isinstance(sent, str) else ""
        index = delta.get("index")
        if not isinstance(index, int):
            # No index: an id starts (or, repeated on every delta, continues) a call; none continues.
            if raw:
                if raw not in self._by_raw:
                    self._by_raw[raw] = self._claim(raw)
                delta["id"] = self._by_raw[raw]
            return
        known = self._by_index.get(index)
        # A different server id on a known index is a new call (some servers reuse index 0).
        if known is None or (raw and raw != known[0] and raw != known[1]):
            known = (raw, self._claim(raw))
            self._by_index[index] = known
            delta["type"] = "function"
        delta["id"] = known[1]

    def fix_calls(self, calls: Iterable[Any]) -> list[dict[str, Any]]:
        """Complete (non-streamed) tool calls with unique ids."""
        fixed: list[dict[str, Any]] = []
        for call in calls:
            item = dict(call) if isinstance(call, Mapping) else {}
            item["id"] = self._claim(item.get("id"))
            fixed.append(item)
        return fixed


def _openai_part(part: Any) -> Any:
    """An Anthropic-form ``image``/``document`` block as the chat-completions part; others as given."""
    if not isinstance(part, Mapping) or part.get("type") not in ("image", "document"):
        return part
    source = part.get("source")
    if not isinstance(source, Mapping):
        return part
    if source.get("type") == "url":
        url = str(source.get("url") or "")
    else:
        url = (
            f"data:{source.get('media_type') or 'application/octet-stream'};base64,{source.get('data') or ''}"
        )
    if part["type"] == "image":
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "file", "file": {"filename": str(part.get("title") or "document.pdf"), "file_data": url}}


def _media(parts: list[Any]) -> bool:
    return any(isinstance(p, Mapping) and p.get("type") in ("image_url", "file") for p in parts)


def openai_parts(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Content parts in chat-completions form: Anthropic-form blocks converted, and images or files in
    tool results (which chat completions only take as text) moved to a user message that follows the
    run of tool messages, with a text placeholder left in the tool result."""
    out: list[dict[str, Any]] = []
    carried: list[Any] = []
    for message in messages:
        content = message.get("content")
        role = message.get("role")
        if carried and role != "tool":
            out.append({"role": "user", "content": carried})
            carried = []
        if not isinstance(content, list):
            out.append(message if isinstance(message, dict) else dict(message))
            continue
        parts = [_openai_part(p) for p in content]
        if role == "tool" and _media(parts):
            call_id = message.get("tool_call_id") or ""
            media = [p for p in parts if isinstance(p, Mapping) and p.get("type") in ("image_url", "file")]
            text = [p for p in parts if p not in media]
            note = f"[{len(media)} attachment(s) follow in the next user message]"
            parts = [*text, {"type": "text", "text": note}]
            carried.extend([{"type": "text", "text": f"Attachments of tool call {call_id}:"}, *media])
        if role == "tool" and all(isinstance(p, Mapping) and p.get("type") == "text" for p in parts):
            # Plain text for tool messages: several compatible servers take only a string there.
            out.append({**message, "content": "\n".join(str(p.get("text", "")) for p in parts)})
            continue
        out.append({**message, "content": parts})
    if carried:
        out.append({"role": "user", "content": carried})
    return out
