"""A scriptable HTTP/1.1 server speaking the OpenAI and Anthropic wire formats, for adapter tests.

It listens on 127.0.0.1 (random port) inside the test's event loop; the real SDKs connect to it over
a real socket. Each request consumes the next scripted :class:`Reply` (JSON, SSE event list, error
status with headers, delays, a cut connection, a hang). Every request is recorded with its path,
headers and decoded JSON body.

SSE replies use chunked transfer encoding, so a *cut* (the socket closed before the terminating
chunk) is a transport error for the client, while a *truncated* stream (events stop early but the
body ends cleanly) is not — exactly the two failure modes real providers show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Recorded",
    "Reply",
    "WireServer",
    "anthropic_message",
    "anthropic_sse",
    "anthropic_text_events",
    "anthropic_tool_events",
    "error",
    "openai_chunk",
    "openai_completion",
    "openai_sse",
    "openai_text_chunks",
    "openai_tool_chunks",
    "sse",
]


@dataclass
class Reply:
    """One scripted HTTP response."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON-encodable, or bytes sent verbatim
    events: list[str] | None = None  # raw SSE text per event (already framed)
    cut_after: int | None = None  # drop the socket after this many events
    stall_after: int | None = None  # after this many events, keep the socket open and send nothing
    hang: bool = False  # never answer
    delay: float = 0.0  # before the status line


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def error(
    status: int,
    *,
    headers: dict[str, str] | None = None,
    message: str = "scripted error",
    kind: str = "api_error",
) -> Reply:
    """An error reply whose body both SDKs understand."""
    body = {"type": "error", "error": {"type": kind, "message": message, "code": kind}}
    return Reply(status=status, headers=dict(headers or {}), body=body)


# ------------------------------------------------------------------------------------------ OpenAI


def openai_chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    no_choices: bool = False,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-wire",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "wire-model",
        "choices": [] if no_choices else [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def sse(data: Any, event: str | None = None) -> str:
    """One framed SSE event (``data`` JSON-encoded unless it is already a string)."""
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def openai_sse(chunks: Iterable[dict[str, Any]], *, done: bool = True) -> list[str]:
    events = [sse(c) for c in chunks]
    if done:
        events.append("data: [DONE]\n\n")
    return events


def _split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def openai_text_chunks(text: str, *, pieces: int = 3, reasoning: str = "") -> list[dict[str, Any]]:
    chunks = [openai_chunk({"role": "assistant", "content": ""})]
    if reasoning:
        chunks += [openai_chunk({"reasoning_content": p}) for p in _split(reasoning, pieces)]
    chunks += [openai_chunk({"content": p}) for p in _split(text, pieces)]
    chunks.append(openai_chunk({}, finish_reason="stop"))
    return chunks


def openai_tool_chunks(
    calls: Sequence[tuple[str, str, str]], *, pieces: int = 6, interleave: bool = False
) -> list[dict[str, Any]]:
    """Tool-call deltas: per call ``(id, name, arguments)``; arguments split in ``pieces``.

    With ``interleave`` the argument pieces of parallel calls alternate, as some servers send them.
    """
    chunks = [openai_chunk({"role": "assistant", "content": None})]
    heads = [
        openai_chunk(
            {
                "tool_calls": [
                    {"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}
                ]
            }
        )
        for i, (cid, name, _args) in enumerate(calls)
    ]
    bodies = [
        [
            openai_chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            for piece in _split(args, pieces)
        ]
        for i, (_cid, _name, args) in enumerate(calls)
    ]
    if interleave:
        chunks += heads
        for row in range(max(len(b) for b in bodies)):
            chunks += [b[row] for b in bodies if row < len(b)]
    else:
        for head, body in zip(heads, bodies, strict=True):
            chunks += [head, *body]
    chunks.append(openai_chunk({}, finish_reason="tool_calls"))
    return chunks


def openai_completion(
    text: str | None = "",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "wire-model",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


# --------------------------------------------------------------------------------------- Anthropic


def anthropic_sse(events: Iterable[dict[str, Any]]) -> list[str]:
    return [sse(e, event=str(e["type"])) for e in events]


def _message_start(usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_wire",
            "type": "message",
            "role": "assistant",
            "model": "wire-claude",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 11, "output_tokens": 1},
        },
    }


def _message_end(stop_reason: str, output_tokens: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


def anthropic_text_events(
    text: str, *, pieces: int = 3, thinking: str = "", usage: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    events = [_message_start(usage)]
    index = 0
    if thinking:
        events.append(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            }
        )
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": p}}
            for p in _split(thinking, pieces)
        ]
        events.append({"type": "content_block_stop", "index": 0})
        index = 1
    events.append(
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
    )
    events += [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
        for p in _split(text, pieces)
    ]
    events.append({"type": "content_block_stop", "index": index})
    return events + _message_end("end_turn", 5)


def anthropic_tool_events(
    calls: Sequence[tuple[str, str, str]],
    *,
    text: str = "",
    pieces: int = 6,
    usage: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    events = [_message_start(usage)]
    index = 0
    if text:
        events.append(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        )
        events.append(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        )
        events.append({"type": "content_block_stop", "index": 0})
        index = 1
    for cid, name, args in calls:
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": cid, "name": name, "input": {}},
            }
        )
        events += [
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in _split(args, pieces)
        ]
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    return events + _message_end("tool_use", 9)


def anthropic_message(
    content: list[dict[str, Any]], *, stop_reason: str = "end_turn", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": "wire-claude",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 11, "output_tokens": 4},
    }


# ------------------------------------------------------------------------------------------ server


class WireServer:
    """``async with WireServer() as server:`` — push replies, point an SDK at ``server.url``."""

    def __init__(self) -> None:
        self._script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.unscripted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> WireServer:
        self._script.extend(replies)
        return self

    def push_openai_stream(self, chunks: Iterable[dict[str, Any]], **kw: Any) -> WireServer:
        return self.push(Reply(events=openai_sse(chunks), **kw))

    def push_anthropic_stream(self, events: Iterable[dict[str, Any]], **kw: Any) -> WireServer:
        return self.push(Reply(events=anthropic_sse(events), **kw))

    @property
    def remaining(self) -> int:
        return len(self._script)

    async def __aenter__(self) -> WireServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_request(self, reader: asyncio.StreamReader) -> Recorded | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        return Recorded(method=method, path=path, headers=headers, body=body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            if self._script:
                reply = self._script.popleft()
            else:
                self.unscripted += 1
                reply = error(500, message="wire server: script exhausted")
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.hang:
                await asyncio.Event().wait()
            if reply.events is not None:
                await self._send_events(writer, reply)
            else:
                await self._send_body(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _head(reply: Reply, extra: dict[str, str]) -> bytes:
        headers = {**extra, **reply.headers, "connection": "close"}
        lines = [f"HTTP/1.1 {reply.status} X"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _send_body(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        data = (
            reply.body
            if isinstance(reply.body, bytes)
            else json.dumps(reply.body if reply.body is not None else {}).encode()
        )
        writer.write(
            self._head(reply, {"content-type": "application/json", "content-length": str(len(data))}) + data
        )
        await writer.drain()

    async def _send_events(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        writer.write(self._head(reply, {"content-type": "text/event-stream", "transfer-encoding": "chunked"}))
        for count, event in enumerate(reply.events or ()):
            if reply.cut_after is not None and count >= reply.cut_after:
                writer.transport.abort()  # no terminating chunk: the client sees a broken body
                return
            if reply.stall_after is not None and count >= reply.stall_after:
                await asyncio.Event().wait()
            data = event.encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
