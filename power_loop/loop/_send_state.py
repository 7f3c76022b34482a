"""What one send shares between the round engine and its helpers: where it writes, where it
publishes, what it has counted, and its one commit path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..base import run_to_completion
from ..hooks import HookPoint as HP
from ..llm import CancellationToken
from ..store import KEEP, NewMessage, RoundUsage, SendAccounting
from ._messages import call_name, row_to_message, run_message_hooks
from ._streaming import race_cancellation
from ._types import StatefulResult

if TYPE_CHECKING:
    from ..context import ContextPipeline
    from ..events import AgentEventBus
    from ..events import AgentEventType as ET
    from ..hooks import AgentHooks
    from ..llm import LLMService
    from ..store import LeaseToken, SessionStore
    from ..tools import ToolRegistry
    from ._cache import SessionWindow
    from ._hook_audit import HookAudit
    from ._steer import SteerSignals, SteerWatch
    from ._types import AgentLoopConfig

__all__ = ["EngineParts", "SendState"]

T = TypeVar("T")


class EngineParts:
    """What the engine borrows from its `StatefulAgentLoop` (a plain slotted class rather than a
    dataclass: it is cheaper to create at import, and nothing compares or prints it)."""

    __slots__ = (
        "audit",
        "bus",
        "config",
        "context",
        "follow_up_flags",
        "hooks",
        "lease",
        "llm",
        "steers",
        "store",
    )

    def __init__(
        self,
        *,
        store: SessionStore,
        llm: LLMService,
        config: AgentLoopConfig,
        hooks: AgentHooks,
        bus: AgentEventBus,
        follow_up_flags: set[str],
        steers: SteerSignals,
        lease: LeaseToken | None = None,
        context: ContextPipeline | None = None,
        audit: HookAudit | None = None,
    ) -> None:
        self.store = store
        self.llm = llm
        self.config = config
        self.hooks = hooks
        self.bus = bus
        self.follow_up_flags = follow_up_flags
        self.steers = steers  # the loop's running sends, by session, for follow_up(mode="steer")
        self.lease = lease  # the session lease fencing every write of the send (if leasing)
        self.context = context  # representation and fold; None = the verbatim window
        # The hook audit trail (record_hook_events): ``hooks`` is then its audited view, and each
        # commit writes the decisions collected since the last one.
        self.audit = audit


class SendState:
    """One send's state: its session window, tools and cancellation, its counters and usage."""

    __slots__ = (
        "_accounted",
        "cancellable",
        "cfg",
        "end_reason",
        "llm_calls",
        "p",
        "pending",
        "registry",
        "response_format",
        "retry_policy",
        "round_usage",
        "rounds",
        "sid",
        "spec",
        "steer",
        "system_prompt",
        "tap",
        "token",
        "tool_call_count",
        "tools",
        "usage",
        "window",
    )

    def __init__(
        self,
        parts: EngineParts,
        session_id: str,
        window: SessionWindow,
        *,
        registry: ToolRegistry | None,
        system_prompt: str,
        token: CancellationToken | None,
        steer: SteerWatch,
        tap: AgentEventBus | None = None,
        stop_token: CancellationToken | None = None,
    ) -> None:
        self.p = parts
        self.steer = steer  # steers queued for this send (follow_up(mode="steer"))
        # A per-send bus (``loop.stream()``): also receives this send's events, and makes the model
        # call stream so tool-call argument deltas can be surfaced.
        self.tap = tap
        self.sid = session_id
        self.window = window
        self.registry = registry if registry is not None and registry.names() else None
        self.tools = self.registry.to_openai_tools() if self.registry is not None else None
        self.system_prompt = system_prompt
        # Without a cancellation source the LLM call and tool batch are awaited directly (no race tasks);
        # ``stop_token`` (`stop_job`) is then only observed at the check points.
        self.cancellable = token is not None
        self.token = token if token is not None else stop_token or CancellationToken.never()
        self.cfg = parts.config
        self.rounds = 0
        self.tool_call_count = 0
        self.llm_calls = 0
        # The last model call's usage, recorded (usage_rounds) with the commit of its round's answer.
        self.round_usage: RoundUsage | None = None
        self.usage = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cache_read_tokens": 0,
            "reasoning_tokens": 0,
            "total_tokens": 0,
        }
        self._accounted = False
        self.spec = self.cfg.output_spec
        self.response_format = (
            self.spec.to_openai_response_format() if self.spec is not None else self.cfg.response_format
        )
        # A service may suggest its own retries (e.g. POWER_LOOP_MAX_RETRIES); the config wins.
        self.retry_policy = self.cfg.retry_policy or getattr(parts.llm, "default_retry_policy", None)
        self.end_reason = ""
        # The session's pending blob as of this send's last write: the tool calls it left open.
        self.pending: dict[str, Any] | None = None

    def race(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        """``awaitable`` raced against the send's cancellation token — or, without a cancellation
        source, ``awaitable`` itself (no extra coroutine frame to resume on every await)."""
        if not self.cancellable:
            return awaitable
        return race_cancellation(awaitable, self.token)

    # ------------------------------------------------------------------ persistence

    async def commit(
        self,
        messages: list[NewMessage],
        *,
        final: bool = False,
        interactions: Any = KEEP,
        consume: list[int] | None = None,
    ) -> None:
        """One transaction: append ``messages`` (and the send's accounting when ``final``).

        The write and the window update recording it are one step that a cancellation of the send
        cannot split: it runs to its end, then the cancellation propagates (with ``pending`` exact,
        so the send can answer the calls it left open)."""
        stats = self._accounting() if final else None
        if not messages and stats is None and interactions is KEEP:
            return
        await run_to_completion(self._commit(messages, stats, interactions, consume))

    async def _commit(
        self,
        messages: list[NewMessage],
        stats: SendAccounting | None,
        interactions: Any,
        consume: list[int] | None,
    ) -> None:
        if messages and self.p.hooks.has(HP.MESSAGE_APPEND):
            messages = await run_message_hooks(self.p.hooks, self.sid, messages)
        window = self.window
        audit = self.p.audit
        result = await self.p.store.append_messages(
            self.sid,
            messages,
            pending_interactions=interactions,
            consume_follow_ups=consume or (),
            stats=stats,
            round_usage=self.round_usage,
            lease=self.p.lease,
            hook_events=audit.take() if audit is not None else (),
        )
        self.round_usage = None
        if messages and result.first_seq != window.next_seq:
            # Someone else wrote to this session: the store is the truth, reload the window.
            rows = await self.p.store.load_active_messages(self.sid)
            if self.p.context is not None:
                self.p.context.rebuild(window, rows)
            else:
                window.messages[:] = [row_to_message(row) for row in rows]
        else:
            append = window.messages.append
            for message in messages:
                append(row_to_message(message))
        window.next_seq = result.next_seq
        self.pending = result.pending
        if result.follow_ups_waiting:
            self.p.follow_up_flags.add(self.sid)

    async def answer_open(self, text: str) -> None:
        """Answer every tool call this send's writes left open with ``text`` (a paused human-input
        request is not open: it waits for its answer)."""
        pending = self.pending
        if not pending or pending.get("pending_interactions"):
            return
        round_index = int(pending.get("round_index") or 0)
        calls = [tc for tc in pending.get("tool_calls") or () if isinstance(tc, dict)]
        if calls:
            await self.commit([self.tool_row(tc, text, round_index) for tc in calls])

    def _accounting(self) -> SendAccounting | None:
        """The send's statistics, once: the first final commit carries them."""
        if self._accounted:
            return None
        self._accounted = True
        usage = self.usage
        return SendAccounting(
            sends=1,
            rounds=self.rounds,
            llm_calls=self.llm_calls,
            tool_calls=self.tool_call_count,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cache_read_tokens=usage["cache_read_tokens"],
            reasoning_tokens=usage["reasoning_tokens"],
            total_tokens=usage["total_tokens"] or usage["prompt_tokens"] + usage["completion_tokens"],
        )

    def assistant(self, text: str, round_index: int, calls: list[dict[str, Any]] | None = None) -> NewMessage:
        return NewMessage(role="assistant", content=text, tool_calls=calls or None, round_index=round_index)

    def tool_row(
        self,
        call: dict[str, Any],
        output: str,
        round_index: int,
        *,
        parts: list[dict[str, Any]] | None = None,
        duration_ms: int | None = None,
    ) -> NewMessage:
        # A result with images (view_image) is stored as parts: the text first, then the images.
        content: str | list[Any] = [{"type": "text", "text": output}, *parts] if parts else output
        return NewMessage(
            role="tool",
            content=content,
            tool_call_id=call["id"],
            name=call_name(call),
            round_index=round_index,
            meta=None if duration_ms is None else {"duration_ms": duration_ms},
        )

    # ------------------------------------------------------------------ results & events

    def result(
        self,
        status: str,
        text: str,
        *,
        pending_tool_calls: list[dict[str, Any]] | None = None,
        pending_interactions: list[dict[str, Any]] | None = None,
        output: dict[str, Any] | None = None,
        pass_reason: str | None = None,
    ) -> StatefulResult:
        usage = dict(self.usage)
        if self.llm_calls:
            usage["calls"] = self.llm_calls
            if not usage["total_tokens"]:
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return StatefulResult(
            session_id=self.sid,
            status=status,
            final_text=text,
            rounds=self.rounds,
            pending_tool_calls=pending_tool_calls or [],
            pending_interactions=pending_interactions or [],
            usage=usage if self.llm_calls else {},
            tool_calls=self.tool_call_count,
            output=output,
            passed=pass_reason is not None,
            pass_reason=pass_reason,
            steers=self.steer.taken,
        )

    def wants(self, event_type: ET) -> bool:
        return self.p.bus.wants(event_type) or (self.tap is not None and self.tap.wants(event_type))

    def emit(
        self,
        event_type: ET,
        make: Callable[[], Any],
        *,
        round_index: int | None = None,
        stream_id: str | None = None,
    ) -> None:
        """Publish an event, building its payload only when someone listens (SPEC §9)."""
        tap = self.tap
        if tap is None:
            self.p.bus.emit(
                event_type, make, session_id=self.sid, round_index=round_index, stream_id=stream_id
            )
            return
        if not self.wants(event_type):
            return
        data = make()
        self.p.bus.emit(event_type, data, session_id=self.sid, round_index=round_index, stream_id=stream_id)
        tap.emit(event_type, data, session_id=self.sid, round_index=round_index, stream_id=stream_id)
