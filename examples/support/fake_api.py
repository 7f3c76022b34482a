"""A local HTTP server that answers each POST with the next scripted server-sent-event stream.

Offline stand-in for a provider API in the examples: ``async with FakeAPI([body, ...]) as api``
gives ``api.base_url`` (``http://127.0.0.1:<port>``) and records each request's JSON body in
``api.requests``. The bodies come from ``openai_wire`` or ``anthropic_wire``.
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any

__all__ = ["FakeAPI"]


class FakeAPI:
    """``async with FakeAPI([body, ...]) as api``: ``api.base_url``, ``api.requests``."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = next(
            int(h.split(":")[1]) for h in head.split("\r\n") if h.lower().startswith("content-length")
        )
        self.requests.append(json.loads(await reader.readexactly(length)))
        body = self.answers[len(self.requests) - 1]
        headers = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        writer.write(headers + body.encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> FakeAPI:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
