"""``ScriptedLLM``: a deterministic model that plays back queued replies and tool calls."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..llm import (
    DEFAULT_CAPABILITIES,
    LLMRequest,
    LLMResponse,
    LLMServiceBase,
    LLMStreamChunk,
    LLMTokenUsage,
    ModelCapabilities,
    message_text,
)

__all__ = ["ScriptExhaustedError", "ScriptedCall", "ScriptedLLM", "ScriptedTurn", "Turn"]


class ScriptExhaustedError(AssertionError):
    """The model was called more often than the test scripted (a test failure, not a runtime error)."""


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One tool call to emit; ``arguments`` is the exact string the model "produces"."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """One scripted model reply. Build with the ``ScriptedLLM.text/tool_call/...`` constructors."""

    text: str = ""
    calls: tuple[ScriptedCall, ...] = ()
    think: str = ""
    error: BaseException | None = None
    delay: float = 0.0
    usage: LLMTokenUsage | None = None

    def with_usage(self, prompt_tokens: int, completion_tokens: int) -> ScriptedTurn:
        """The same turn reporting the given usage (default is 10 prompt / 5 completion)."""
        usage = LLMTokenUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        return dataclasses.replace(self, usage=usage)


Turn = ScriptedTurn | str | LLMResponse
"""A script entry: a :class:`ScriptedTurn`, a plain string (a text reply) or a ready ``LLMResponse``."""

Responder = Callable[[LLMRequest], Turn | Awaitable[Turn]]


def _args_text(args: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(args or {}), ensure_ascii=False)


def _pieces(text: str, parts: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _coerce(turn: Turn) -> ScriptedTurn:
    if isinstance(turn, ScriptedTurn):
        return turn
    if isinstance(turn, str):
        return ScriptedTurn(text=turn)
    if isinstance(turn, LLMResponse):
        calls = tuple(
            ScriptedCall(tc["function"]["name"], tc["function"]["arguments"], tc["id"])
            for tc in turn.get_tool_calls()
        )
        return ScriptedTurn(
            text=turn.raw_text or turn.content_text, calls=calls, think=turn.think, usage=turn.token_usage
        )
    raise TypeError(
        f"a ScriptedLLM turn must be a ScriptedTurn, str or LLMResponse, not {type(turn).__name__}"
    )


class ScriptedLLM(LLMServiceBase):
    """A scripted, offline model for tests: each call consumes the next turn of the script.

    ::

        llm = ScriptedLLM([
            ScriptedLLM.tool_call("add", {"a": 1, "b": 2}),
            ScriptedLLM.text("3"),
        ])

    When the script is empty the ``responder`` (called with the request, sync or async) decides,
    else ``default`` is replayed, else :class:`ScriptExhaustedError` is raised. Every request is
    recorded (deep-copied) in :attr:`requests`. Text and tool-call arguments are streamed in
    ``chunks`` pieces (OpenAI delta shape), so streaming code paths get exercised. Tool calls without
    an explicit id get ``call_1``, ``call_2``, … in emission order. ``sleep`` (default
    ``asyncio.sleep``) serves :meth:`delay` turns; pass a ``VirtualClock().sleep`` to skip real waits.
    ``record_requests=False`` skips the per-call deep copy (benchmarks with long histories).
    ``capabilities`` (default: everything) plays a model that lacks something.
    """

    def __init__(
        self,
        script: Iterable[Turn] | None = None,
        *,
        responder: Responder | None = None,
        default: Turn | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        chunks: int = 3,
        record_requests: bool = True,
        capabilities: ModelCapabilities | None = None,
    ) -> None:
        self.capabilities = capabilities or DEFAULT_CAPABILITIES
        self._script: deque[ScriptedTurn] = deque(_coerce(t) for t in (script or ()))
        self._responder = responder
        self._default = None if default is None else _coerce(default)
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._chunks = max(1, chunks)
        self._record = record_requests
        self._ids = 0
        self._consumed = 0
        self._calls = 0
        self.requests: list[LLMRequest] = []
        self.closed = False

    # ---------------------------------------------------------------------- turn constructors

    @staticmethod
    def text(text: str, *, think: str = "", usage: LLMTokenUsage | None = None) -> ScriptedTurn:
        """A plain text answer (optionally with reasoning ``think`` text)."""
        return ScriptedTurn(text=text, think=think, usage=usage)

    @staticmethod
    def tool_call(
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        text: str = "",
        usage: LLMTokenUsage | None = None,
    ) -> ScriptedTurn:
        """One tool call with JSON-encoded ``args``."""
        return ScriptedTurn(text=text, calls=(ScriptedCall(name, _args_text(args), id),), usage=usage)

    @staticmethod
    def tool_calls(
        calls: Sequence[tuple[str, Mapping[str, Any] | None] | tuple[str, Mapping[str, Any] | None, str]],
        *,
        text: str = "",
        usage: LLMTokenUsage | None = None,
    ) -> ScriptedTurn:
        """Several tool calls in one reply: ``[(name, args), (name, args, id), ...]``."""
        built = []
        for entry in calls:
            call_id = entry[2] if len(entry) == 3 else None
            built.append(ScriptedCall(entry[0], _args_text(entry[1]), call_id))
        return ScriptedTurn(text=text, calls=tuple(built), usage=usage)

    @staticmethod
    def json(data: Any, *, usage: LLMTokenUsage | None = None) -> ScriptedTurn:
        """A structured-output answer: ``data`` serialised as the reply text."""
        return ScriptedTurn(text=json.dumps(data, ensure_ascii=False), usage=usage)

    @staticmethod
    def raw_arguments(
        name: str, arguments: str, *, id: str | None = None, usage: LLMTokenUsage | None = None
    ) -> ScriptedTurn:
        """A tool call whose ``arguments`` string is emitted verbatim (e.g. malformed JSON)."""
        return ScriptedTurn(calls=(ScriptedCall(name, arguments, id),), usage=usage)

    @staticmethod
    def error(exc: BaseException) -> ScriptedTurn:
        """A call that raises ``exc`` (e.g. a provider error to exercise retries)."""
        return ScriptedTurn(error=exc)

    @staticmethod
    def delay(seconds: float, then: Turn | None = None) -> ScriptedTurn:
        """``then`` (default: an empty answer), delivered after ``seconds`` of the injected ``sleep``."""
        turn = _coerce(then) if then is not None else ScriptedTurn()
        return dataclasses.replace(turn, delay=turn.delay + seconds)

    # ---------------------------------------------------------------------------- inspection

    def push(self, *turns: Turn) -> None:
        """Append turns to the script."""
        self._script.extend(_coerce(t) for t in turns)

    @property
    def remaining(self) -> int:
        """Scripted turns not consumed yet."""
        return len(self._script)

    @property
    def last_request(self) -> LLMRequest:
        """The most recent request (raises ``IndexError`` before the first call)."""
        return self.requests[-1]

    # ------------------------------------------------------------------------------- service

    async def _next_turn(self, request: LLMRequest) -> ScriptedTurn:
        if self._script:
            self._consumed += 1
            return self._script.popleft()
        if self._responder is not None:
            produced = self._responder(request)
            if inspect.isawaitable(produced):
                produced = await produced
            return _coerce(produced)
        if self._default is not None:
            return self._default
        last_user = next(
            (message_text(m.get("content")) for m in reversed(request.messages) if m.get("role") == "user"),
            "",
        )
        raise ScriptExhaustedError(
            f"ScriptedLLM received request #{self._calls} but its script is exhausted "
            f"({self._consumed} scripted turn(s) consumed; last user message {last_user[:80]!r}); "
            "push() more turns or pass default=/responder="
        )

    def _call_id(self, given: str | None) -> str:
        if given:
            return given
        self._ids += 1
        return f"call_{self._ids}"

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMStreamChunk]:
        """Yield think/text deltas, tool-call deltas, then a final chunk with calls and usage."""
        if self._record:
            self.requests.append(copy.deepcopy(request))
        self._calls += 1
        turn = await self._next_turn(request)
        if turn.delay > 0:
            await self._sleep(turn.delay)
        if turn.error is not None:
            raise turn.error
        for piece in _pieces(turn.think, self._chunks):
            yield LLMStreamChunk(think=piece)
        for piece in _pieces(turn.text, self._chunks):
            yield LLMStreamChunk(delta_text=piece)
        final_calls: list[dict[str, Any]] = []
        for index, call in enumerate(turn.calls):
            call_id = self._call_id(call.id)
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield LLMStreamChunk(delta_tool_calls=[head])
            for piece in _pieces(call.arguments, self._chunks):
                yield LLMStreamChunk(delta_tool_calls=[{"index": index, "function": {"arguments": piece}}])
            final_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            )
        usage = turn.usage if turn.usage is not None else LLMTokenUsage(10, 5, 15)
        yield LLMStreamChunk(tool_calls=final_calls, token_usage=copy.copy(usage), is_final=True)

    async def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"<ScriptedLLM remaining={self.remaining} calls={self._calls}>"
