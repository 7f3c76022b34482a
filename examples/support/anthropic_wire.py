"""Streamed answers in the Anthropic Messages API wire format (server-sent events), for ``FakeAPI``.

``answer(blocks, stop)`` builds one response body: a ``message_start`` with cache-read usage, one
content block per ``(kind, name_or_text, json_input)`` (tool inputs arrive as partial JSON), then
``message_delta`` / ``message_stop``. ``cache_marks(body)`` lists a request's prompt-cache breakpoints.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["answer", "cache_marks"]


def event(kind: str, **data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def answer(blocks: list[tuple[str, str, str]], stop: str) -> str:
    """``blocks``: (kind, name_or_text, json_input) — kind is "text" or "tool_use"."""
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": 2048,
        "cache_creation_input_tokens": 0,
        "output_tokens": 1,
    }
    out = [
        event(
            "message_start",
            message={
                "id": "msg",
                "type": "message",
                "role": "assistant",
                "model": "claude-demo",
                "content": [],
                "stop_reason": None,
                "usage": usage,
            },
        )
    ]
    for index, (kind, value, args) in enumerate(blocks):
        if kind == "text":
            out.append(event("content_block_start", index=index, content_block={"type": "text", "text": ""}))
            out.append(event("content_block_delta", index=index, delta={"type": "text_delta", "text": value}))
        else:
            out.append(
                event(
                    "content_block_start",
                    index=index,
                    content_block={"type": "tool_use", "id": f"toolu_{index}", "name": value, "input": {}},
                )
            )
            for i in range(0, len(args), 5):  # arguments arrive as partial JSON
                out.append(
                    event(
                        "content_block_delta",
                        index=index,
                        delta={"type": "input_json_delta", "partial_json": args[i : i + 5]},
                    )
                )
        out.append(event("content_block_stop", index=index))
    out.append(event("message_delta", delta={"stop_reason": stop}, usage={"output_tokens": 20}))
    out.append(event("message_stop"))
    return "".join(out)


def cache_marks(body: dict[str, Any]) -> list[str]:
    marks = [f"tools[{i}]" for i, t in enumerate(body.get("tools", [])) if "cache_control" in t]
    marks += [f"system[{i}]" for i, b in enumerate(body.get("system", [])) if "cache_control" in b]
    for m, message in enumerate(body["messages"]):
        marks += [
            f"messages[{m}].content[{b}]"
            for b, blk in enumerate(message["content"])
            if "cache_control" in blk
        ]
    return marks
