"""``AgentPipeline``: the published "run the loop over a message list" call shape, and message sinks.

``await AgentPipeline(llm=..., config=...).run(messages)`` runs one send of the one engine
(``StatefulAgentLoop``) over ``messages``: the messages before the last become the history of a new
session, the last (a user message) is sent. The session lives in ``store`` when given (it stays
there, durable and resumable), else in a private in-memory store dropped after the run. A
:class:`MessageSink` is told about each round and message as the engine records them;
:class:`SQLiteSink` copies them into a session of another store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError
from ..events import AgentEventBus
from ..hooks import AgentHooks, CompactAfterCtx, HookPoint, MessageAppendCtx, RoundEndCtx, RoundStartCtx
from ..llm import CancellationLike, LLMService
from ..store import SessionStore
from ..tools import ToolRegistry
from ._loop import StatefulAgentLoop
from ._phase import PhaseContext, current_runner
from ._pipeline_steps import PipelineSteps
from ._types import AgentLoopConfig, AgentLoopResult, LoopMessage

__all__ = ["AgentPipeline", "MessageSink", "NullSink", "SQLiteSink"]

# Sink hooks run after the application's own (which may still rewrite a message).
_SINK_ORDER = 1_000_000


@runtime_checkable
class MessageSink(Protocol):
    """Told about a pipeline run as it happens. ``on_messages_inserted`` (sync) reports messages put
    into the history without a round (the history a run starts from); the others are awaited."""

    async def on_round_started(self, round_index: int) -> None: ...

    async def on_message_appended(self, message: LoopMessage, *, round_index: int | None = None) -> None: ...

    def on_messages_inserted(self, index: int, messages: Sequence[LoopMessage]) -> None: ...

    async def on_assistant_tool_calls(
        self, message: LoopMessage, *, round_index: int | None = None
    ) -> None: ...

    async def on_compaction(self, *, before_count: int, after_count: int, round_index: int) -> None: ...

    async def on_round_ended(self, round_index: int) -> None: ...


class NullSink:
    """A sink that ignores everything (the default)."""

    async def on_round_started(self, round_index: int) -> None:
        return None

    async def on_message_appended(self, message: LoopMessage, *, round_index: int | None = None) -> None:
        return None

    def on_messages_inserted(self, index: int, messages: Sequence[LoopMessage]) -> None:
        return None

    async def on_assistant_tool_calls(self, message: LoopMessage, *, round_index: int | None = None) -> None:
        return None

    async def on_compaction(self, *, before_count: int, after_count: int, round_index: int) -> None:
        return None

    async def on_round_ended(self, round_index: int) -> None:
        return None


class SQLiteSink(NullSink):
    """Copies every message of a run into session ``session_id`` of ``store`` (any backend: the name
    is the published one). The session is created on the first write if it does not exist. Inserted
    messages (sync callback) are written before the next appended one, or by :meth:`flush`."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self._queued: list[LoopMessage] = []
        self._ready = False

    def on_messages_inserted(self, index: int, messages: Sequence[LoopMessage]) -> None:
        self._queued.extend(dict(m) for m in messages)

    async def on_message_appended(self, message: LoopMessage, *, round_index: int | None = None) -> None:
        await self.flush()
        await self._write(message, round_index)

    async def flush(self) -> None:
        """Write the inserted messages still queued."""
        while self._queued:
            await self._write(self._queued.pop(0), None)

    async def _write(self, message: Mapping[str, Any], round_index: int | None) -> None:
        if not self._ready:
            if await self.store.get_session(self.session_id) is None:
                await self.store.create_session(session_id=self.session_id)
            self._ready = True
        await self.store.append_message(
            self.session_id,
            role=str(message.get("role")),
            content=message.get("content"),
            tool_calls=message.get("tool_calls"),
            tool_call_id=message.get("tool_call_id"),
            name=message.get("name"),
            round_index=round_index,
        )


class AgentPipeline(PipelineSteps):
    """One send over a message list (the published call shape), run by :class:`StatefulAgentLoop`.

    ``hooks`` / ``bus`` default to the current :class:`AgentRunner`'s, else fresh ones; ``ctx`` is the
    :class:`PhaseContext` whose ``session_id`` names the session (a new id when unset).
    ``drain_follow_ups()`` is called at each round start; the texts it returns are delivered to the
    running send as one follow-up message, like ``StatefulAgentLoop.follow_up``. The published phase
    methods (``prepare_round``, ``call_llm``, ``execute_tool``) run one step each on their own; ``run``
    does not call them (see ``_pipeline_steps``).
    """

    def __init__(
        self,
        *,
        llm: LLMService,
        config: AgentLoopConfig | None = None,
        tool_registry: ToolRegistry | None = None,
        hooks: AgentHooks | None = None,
        bus: AgentEventBus | None = None,
        ctx: PhaseContext | None = None,
        session_id: str | None = None,
        stop_event: CancellationLike = None,
        sink: MessageSink | None = None,
        store: SessionStore | None = None,
        drain_follow_ups: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        runner, scoped_sid = current_runner()
        self.llm = llm
        self.config = config if config is not None else AgentLoopConfig()
        self.tool_registry = tool_registry
        self.hooks = hooks if hooks is not None else (runner.hooks if runner else AgentHooks())
        self.bus = bus if bus is not None else (runner.event_bus if runner else AgentEventBus())
        self.ctx = ctx if ctx is not None else PhaseContext(session_id=session_id or scoped_sid)
        self.session_id = session_id or self.ctx.session_id
        self.stop_event = stop_event
        self.sink: MessageSink = sink if sink is not None else NullSink()
        self.store = store
        self.drain_follow_ups = drain_follow_ups
        #: The send index of the run's send (set by :meth:`run`).
        self.send_index = 0
        self.tool_calls = 0

    async def run(self, messages: Sequence[Mapping[str, Any]]) -> AgentLoopResult:
        """Run the send: ``messages`` is the history plus the new user message (a leading system
        message is the send's system prompt). Returns the result and the session's final history."""
        system_prompt, history, user = _split(messages)
        loop = StatefulAgentLoop(
            llm=self.llm,
            store=self.store,
            dsn=None if self.store is not None else ":memory:",
            config=self.config,
            tool_registry=self.tool_registry,
            hooks=self.hooks,
            event_bus=self.bus,
        )
        try:
            store = await loop.ensure_store()
            sid = await self._new_session(store, history)
            self.session_id = self.ctx.session_id = sid
            detach = self._attach(loop, sid)
            try:
                result = await loop.send(user, sid, stop_event=self.stop_event, system_prompt=system_prompt)
            finally:
                detach()
            flush = getattr(self.sink, "flush", None)
            if flush is not None:
                await flush()
            state = await store.get_state(sid)
            self.send_index = state.send_index if state is not None else 0
            return AgentLoopResult(
                status=result.status,  # type: ignore[arg-type]
                final_text=result.final_text,
                rounds=result.rounds,
                pending_tool_calls=result.pending_tool_calls,
                pending_interactions=result.pending_interactions,
                messages=await loop.get_messages(sid),
                usage=result.usage,
                tool_calls=result.tool_calls,
            )
        finally:
            await loop.aclose()

    async def _new_session(self, store: SessionStore, history: list[LoopMessage]) -> str:
        if self.session_id is not None and await store.get_session(self.session_id) is not None:
            raise ConfigError(
                f"session {self.session_id!r} already exists: AgentPipeline.run starts a session; "
                "continue one with StatefulAgentLoop.send"
            )
        sid = await store.create_session(session_id=self.session_id, system_prompt=self.config.system_prompt)
        for message in history:
            await store.append_message(
                sid,
                role=str(message["role"]),
                content=message.get("content"),
                tool_calls=message.get("tool_calls"),
                tool_call_id=message.get("tool_call_id"),
                name=message.get("name"),
            )
        if history:
            self.sink.on_messages_inserted(0, history)
        return sid

    def _attach(self, loop: StatefulAgentLoop, sid: str) -> Callable[[], None]:
        """Register the sink and follow-up hooks for session ``sid``; returns their removal."""
        sink, drain = self.sink, self.drain_follow_ups

        async def round_start(ctx: RoundStartCtx) -> None:
            if ctx.session_id != sid:
                return
            if drain is not None:
                texts = [t for t in drain() if t]
                if texts:
                    await loop.follow_up("\n\n".join(texts), sid)
            await sink.on_round_started(ctx.round_index)

        async def appended(ctx: MessageAppendCtx) -> None:
            if ctx.session_id == sid:
                await sink.on_message_appended(dict(ctx.message), round_index=ctx.round_index)
                if ctx.message.get("role") == "assistant" and ctx.message.get("tool_calls"):
                    await sink.on_assistant_tool_calls(dict(ctx.message), round_index=ctx.round_index)

        async def compacted(ctx: CompactAfterCtx) -> None:
            if ctx.session_id == sid:
                await sink.on_compaction(
                    before_count=ctx.messages_before_count,
                    after_count=ctx.messages_after_count,
                    round_index=ctx.round_index,
                )

        async def round_end(ctx: RoundEndCtx) -> None:
            if ctx.session_id == sid:
                await sink.on_round_ended(ctx.round_index)

        handlers: list[tuple[HookPoint, Any]] = [
            (HookPoint.ROUND_START, round_start),
            (HookPoint.MESSAGE_APPEND, appended),
            (HookPoint.COMPACT_AFTER, compacted),
            (HookPoint.ROUND_END, round_end),
        ]
        if type(sink) is NullSink:
            handlers = handlers[:1] if drain is not None else []
        for point, handler in handlers:
            self.hooks.register(point, handler, order=_SINK_ORDER)

        def detach() -> None:
            for point, handler in handlers:
                self.hooks.unregister(point, handler)

        return detach


def _split(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None, list[LoopMessage], LoopMessage]:
    """(system prompt, history, the user message to send) of a pipeline's input."""
    items = [dict(m) for m in messages]
    if any(not isinstance(m.get("role"), str) for m in items):
        raise ConfigError("AgentPipeline.run takes message dicts with a 'role'")
    system_prompt = None
    if items and items[0]["role"] == "system":
        system_prompt = str(items.pop(0).get("content") or "")
    if not items or items[-1]["role"] != "user":
        raise ConfigError("AgentPipeline.run needs messages ending with the user message to send")
    roles = {m["role"] for m in items}
    if not roles <= {"user", "assistant", "tool"}:
        raise ConfigError(
            f"AgentPipeline.run: only a leading system message is allowed, got roles {sorted(roles)}"
        )
    user = items.pop()
    return system_prompt, items, {"role": "user", "content": user.get("content")}
