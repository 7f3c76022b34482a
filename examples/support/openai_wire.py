"""Streamed answers in the OpenAI chat-completions wire format (``stream=true``), for ``FakeAPI``.

``tool_call_answer`` and ``text_answer`` build one response body each (arguments and text arrive in
pieces, usage comes last, then ``data: [DONE]``).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["text_answer", "tool_call_answer"]


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    body: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "demo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["choices"], body["usage"] = [], usage
    return f"data: {json.dumps(body)}\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def tool_call_answer(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> str:
    """A streamed tool call whose JSON arguments arrive four characters at a time."""
    args = json.dumps(arguments)
    opening = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    pieces = [
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 4]}}]})
        for i in range(0, len(args), 4)
    ]
    end = [_chunk({}, "tool_calls"), _chunk({}, usage=_usage(50, 9)), "data: [DONE]\n\n"]
    return "".join([_chunk({"tool_calls": [opening]}), *pieces, *end])


def text_answer(*pieces: str) -> str:
    """A streamed text answer, one chunk per piece."""
    end = [_chunk({}, "stop"), _chunk({}, usage=_usage(80, 8)), "data: [DONE]\n\n"]
    return "".join([_chunk({"content": p}) for p in pieces] + end)
