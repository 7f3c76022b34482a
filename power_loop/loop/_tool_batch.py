"""One round's tool calls: run concurrently (bounded by ``tool_concurrency``), each through the tool
hooks, their results committed in call order — which resolves the calls the store holds pending.

Cancellation or a failure at any await still answers every committed call (unfinished ones get a
``[cancelled: …]`` / ``[error: …]`` result). A ``request_user_input`` call pauses the send with
``waiting_for_input``."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import events as P
from .. import hooks as H
from ..base import get_tool_runtime_context, use_tool_runtime_context
from ..errors import CancellationRequested
from ..events import AgentEventType as ET
from ..hooks import HookDirective as HD
from ..hooks import HookPoint as HP
from ..tools import HumanInputRequired, ToolOutcome, TurnPassed, execute_tool_call
from ._messages import call_args, call_name
from ._reconcile import effect_of
from ._steer import STEERED_TEXT
from ._terminal import cancelled

if TYPE_CHECKING:
    from ..store import NewMessage
    from ..tools import ToolOutcome
    from ._send_state import SendState
    from ._types import StatefulResult

__all__ = ["CANCELLED_TEXT", "ToolBatch"]

#: The result of a call still open when the send's task is cancelled.
CANCELLED_TEXT = "[cancelled: send was cancelled]"


class ToolBatch:
    """Runs ``calls`` of round ``round_index``; ``broken`` tells whether a ``tool.after`` hook
    stopped the batch (the send then ends after this round)."""

    __slots__ = (
        "broken",
        "calls",
        "durations",
        "human",
        "logged",
        "outputs",
        "parts",
        "passed",
        "round_index",
        "s",
        "steered",
    )

    def __init__(
        self,
        s: SendState,
        round_index: int,
        calls: list[dict[str, Any]],
        known: dict[int, str] | None = None,
    ) -> None:
        self.s = s
        self.round_index = round_index
        self.calls = calls
        # ``known``: outputs recovery already has (those calls do not run again).
        self.outputs: list[str | None] = [None] * len(calls)
        for index, output in (known or {}).items():
            self.outputs[index] = output
        self.human: list[tuple[int, HumanInputRequired]] = []
        self.broken = False
        # Content parts (images) a handler attached to its result, by tool call id.
        self.parts: dict[str, list[dict[str, Any]]] = {}
        self.logged: set[int] = set()  # side-effecting calls, logged started/finished in the store
        self.passed: str | None = None  # the reason, when a call passed the turn (pass_turn)
        self.steered: list[str] = []  # the tools a steer cancelled (StopPolicy), by name
        # Each call's run time in ms (hooks included, waiting for a concurrency slot not), by index:
        # stored as the result row's ``meta["duration_ms"]``.
        self.durations: dict[int, int] = {}

    async def run(self) -> StatefulResult | None:
        """Run the calls and commit their results. Returns a result when the send must stop."""
        await self._log_started()
        limit = asyncio.Semaphore(self.s.cfg.tool_concurrency)
        tasks = [
            asyncio.ensure_future(self._run_one(limit, i, call))
            for i, call in enumerate(self.calls)
            if self.outputs[i] is None
        ]
        try:
            await self.s.race(asyncio.gather(*tasks))
        except CancellationRequested as exc:
            await self._answer_unfinished(f"[cancelled: {exc.reason}]")
            return await cancelled(self.s, self.round_index, exc.reason)
        except asyncio.CancelledError:
            # The caller cancelled us (e.g. a stream consumer left): answer what is open, durably.
            for task in tasks:
                task.cancel()
            await self._answer_unfinished(CANCELLED_TEXT)  # a commit runs to its end
            raise
        except BaseException:
            for task in tasks:
                task.cancel()
            await self._answer_unfinished("[error: tool batch failed]")
            raise
        rows = [
            self.s.tool_row(
                call,
                output,
                self.round_index,
                parts=self.parts.get(str(call["id"])),
                duration_ms=self.durations.get(index),
            )
            for index, (call, output) in enumerate(zip(self.calls, self.outputs, strict=True))
            if output is not None
        ]
        if self.human:
            return await self._pause_for_input(rows)
        if self.passed is not None:
            await self.s.commit(rows, final=True)
            return self.s.result("completed", "", pass_reason=self.passed)
        await self.s.commit(rows)
        return None

    async def _run_one(self, limit: asyncio.Semaphore, index: int, call: dict[str, Any]) -> None:
        async with limit:
            if self.broken:
                self.outputs[index] = "[skipped: tool.after hook stopped the batch]"
                return
            started = time.perf_counter()
            try:
                output = self.outputs[index] = await self._steerable(call)
            except HumanInputRequired as request:
                self.human.append((index, request))
                return
            except TurnPassed as signal:
                self.outputs[index] = f"[turn passed: {signal.reason}]" if signal.reason else "[turn passed]"
                self.passed = self.passed if self.passed is not None else signal.reason
                return
            finally:
                self.durations[index] = round((time.perf_counter() - started) * 1000)
            if index in self.logged:
                await self.s.p.store.record_tool_call_finished(self.s.sid, str(call["id"]), output)

    async def _steerable(self, call: dict[str, Any]) -> str:
        """Run one call; a steer cancels it when `StopPolicy` lets it, and it is answered so."""
        name = call_name(call)
        output = await self.s.steer.tool_call(name, self._invoke(call))
        if output is None:
            self.steered.append(name)
            self._events(call, name, call_args(call), STEERED_TEXT, failed=False)
            return STEERED_TEXT
        return output

    async def _log_started(self) -> None:
        """Durably log the side-effecting calls as started before any runs (one write), so a crash
        from here on never leads recovery to run them again blindly."""
        s = self.s
        seq = (s.pending or {}).get("assistant_seq")
        if seq is None or s.registry is None:
            return
        self.logged = {
            i
            for i, call in enumerate(self.calls)
            if self.outputs[i] is None and effect_of(s.registry, call_name(call)) == "side_effect"
        }
        if self.logged:
            started = [(str(self.calls[i]["id"]), call_name(self.calls[i])) for i in sorted(self.logged)]
            await s.p.store.record_tool_calls_started(s.sid, started, assistant_seq=int(seq))

    async def _answer_unfinished(self, text: str) -> None:
        s = self.s
        rows = [
            s.tool_row(call, output if output is not None else text, self.round_index)
            for call, output in zip(self.calls, self.outputs, strict=True)
        ]
        await s.commit(rows)

    async def _pause_for_input(self, rows: list[NewMessage]) -> StatefulResult:
        """Commit the batch with the first input request pending; the send waits for the answer."""
        s, calls, round_index = self.s, self.calls, self.round_index
        ordered = sorted(self.human, key=lambda pair: pair[0])
        index, request = ordered[0]
        waiting = [request.to_pending(tool_call_id=calls[index]["id"], tool_name=call_name(calls[index]))]
        # Other input requests in the same batch are superseded by the first one.
        rows.extend(
            s.tool_row(calls[i], "[skipped: superseded by a user-input request]", round_index)
            for i, _ in ordered[1:]
        )
        await s.commit(rows, final=True, interactions=waiting)
        first = waiting[0]
        s.emit(
            ET.INPUT_REQUESTED,
            lambda: P.InputRequestedPayload(
                interaction_id=first["interaction_id"],
                kind=first.get("kind", "text"),
                prompt=first.get("prompt", ""),
                options=list(first.get("options") or []),
                tool_call_id=first["tool_call_id"],
            ),
            round_index=round_index,
        )
        return s.result(
            "waiting_for_input", "", pending_tool_calls=[calls[index]], pending_interactions=waiting
        )

    # ------------------------------------------------------------------ one call

    async def _invoke(self, call: dict[str, Any]) -> str:
        s, round_index = self.s, self.round_index
        name = call_name(call)
        args: dict[str, Any] | None = None
        if s.p.hooks.has(HP.TOOL_BEFORE):
            args = call_args(call)
            before = H.ToolBeforeCtx(
                session_id=s.sid, round_index=round_index, tool_call=call, tool_name=name, tool_args=args
            )
            if await s.p.hooks.run(HP.TOOL_BEFORE, before) is HD.SKIP:
                self._events(call, name, args, before.output, failed=False)
                return before.output
            if (
                before.tool_name != name
                or before.tool_args is not args
                or before.tool_args != call_args(call)
            ):
                name, args = before.tool_name, before.tool_args
                call = {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)},
                }
        if s.wants(ET.TOOL_CALL_STARTED):
            shown = args if args is not None else call_args(call)
            s.emit(
                ET.TOOL_CALL_STARTED,
                lambda: P.ToolCallStartedPayload(name=name, tool_input=shown, tool_call_id=call["id"]),
                round_index=round_index,
            )
        s.tool_call_count += 1
        outcome = await self._execute(call)
        if outcome.parts and not outcome.failed:
            self.parts[str(call["id"])] = list(outcome.parts)
        output, failed = await self._after(call, name, outcome)
        self._events(call, name, outcome.args, output, failed=failed)
        return output

    async def _after(self, call: dict[str, Any], name: str, outcome: ToolOutcome) -> tuple[str, bool]:
        """The ``tool.error`` hook (it may replace or retry a failure), then ``tool.after``."""
        s, hooks, round_index = self.s, self.s.p.hooks, self.round_index
        output, failed = outcome.output, outcome.failed
        if failed and outcome.error is not None and hooks.has(HP.TOOL_ERROR):
            err = H.ToolErrorCtx(
                session_id=s.sid,
                round_index=round_index,
                tool_call=call,
                tool_name=name,
                tool_args=outcome.args,
                error=outcome.error if isinstance(outcome.error, Exception) else None,
                error_message=output,
                output="",
            )
            directive = await hooks.run(HP.TOOL_ERROR, err)
            if directive is HD.SKIP:
                output, failed = err.output or f"Error: {outcome.error}", False
            elif directive is HD.SHORT_CIRCUIT:
                retry = await self._execute(call)
                output, failed = retry.output, retry.failed
        if hooks.has(HP.TOOL_AFTER):
            after = H.ToolAfterCtx(
                session_id=s.sid,
                round_index=round_index,
                tool_call=call,
                tool_name=name,
                tool_args=outcome.args,
                output=output,
                failed=failed,
            )
            if await hooks.run(HP.TOOL_AFTER, after) is HD.BREAK:
                self.broken = True
            output, failed = after.output, after.failed
        return output, failed

    async def _execute(self, call: dict[str, Any]) -> ToolOutcome:
        """Run one call, with its id in the tool runtime context (e.g. spawn_agent records it)."""
        registry = self.s.registry
        assert registry is not None
        max_chars = self.s.cfg.tool_result_max_chars
        runtime = get_tool_runtime_context()
        if runtime is None:
            return await execute_tool_call(registry, call, max_result_chars=max_chars)
        seq = (self.s.pending or {}).get("assistant_seq")
        current = replace(
            runtime, tool_call_id=str(call["id"]), assistant_seq=None if seq is None else int(seq)
        )
        with use_tool_runtime_context(current):
            return await execute_tool_call(registry, call, max_result_chars=max_chars)

    def _events(self, call: dict[str, Any], name: str, args: Any, output: str, *, failed: bool) -> None:
        s, round_index = self.s, self.round_index
        if failed and s.wants(ET.TOOL_CALL_FAILED):
            s.emit(
                ET.TOOL_CALL_FAILED,
                lambda: P.ToolCallFailedPayload(
                    name=name, output=output, tool_input=args, tool_call_id=call["id"]
                ),
                round_index=round_index,
            )
        if s.wants(ET.TOOL_CALL_COMPLETED):
            s.emit(
                ET.TOOL_CALL_COMPLETED,
                lambda: P.ToolCallCompletedPayload(
                    name=name, output=output, tool_input=args, tool_call_id=call["id"], failed=failed
                ),
                round_index=round_index,
            )
