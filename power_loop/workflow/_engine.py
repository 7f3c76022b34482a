"""`WorkflowEngine`: walks a `WorkflowSpec` tree, runs leaves through an `Executor`, journals each one.

Every leaf has a *step key*: its node id, plus ``:<index>`` per enclosing foreach item / loop
iteration (``researcher:2``). The key names its journal row, its idempotency key
(``<run_id>:<step key>``) and its entry in `WorkflowResult.results`. A reference made from inside a
foreach/loop body resolves within the same item/iteration.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..agents import AgentSpec
from ..errors import AgentSpecError
from ..events import AgentEvent, AgentEventType, WorkflowStepPayload
from ..llm import CancellationToken
from ..loop import StatefulAgentLoop
from ._errors import WorkflowRunError
from ._hooks import step_end, step_start
from ._journal import Journal
from ._leaf import Executor, InProcessExecutor, leaf_session_id
from ._nodes import (
    AgentNode,
    BranchNode,
    ForeachNode,
    LoopNode,
    LoopUntil,
    ParallelNode,
    SequenceNode,
    WorkflowNode,
    child_nodes,
)
from ._results import AgentResult, SharedBudget, WorkflowResult, add_usage
from ._spec import WorkflowSpec
from ._template import render

__all__ = ["WorkflowEngine", "in_workflow"]

_IN_WORKFLOW: contextvars.ContextVar[str | None] = contextvars.ContextVar("power_loop_workflow", default=None)
# How often a running workflow looks for a cancellation requested by run id (one small journal read).
CANCEL_POLL_S = 1.0
CONTEXT_SEPARATOR = "\n\n--- context ---\n"
Sleep = Callable[[float], Awaitable[Any]]


def in_workflow() -> bool:
    """True inside a running workflow (its leaves and their tools): nested workflows are refused."""
    return _IN_WORKFLOW.get() is not None


class _LeafFailed(Exception):
    def __init__(self, result: AgentResult) -> None:
        self.result = result
        super().__init__(result.error or result.status)


def _scope_depths(root: WorkflowNode) -> dict[str, int]:
    """How many foreach/loop bodies enclose each node id (the length of its step-key suffix)."""
    depths: dict[str, int] = {}

    def walk(node: WorkflowNode, depth: int) -> None:
        node_id = getattr(node, "id", None)
        if node_id is not None:
            depths[node_id] = depth
        inner = depth + 1 if isinstance(node, (ForeachNode, LoopNode)) else depth
        for child in child_nodes(node):
            walk(child, inner)

    walk(root, 0)
    return depths


def step_key(node_id: str, scope: Sequence[str]) -> str:
    """``node_id`` plus ``:<index>`` per enclosing foreach item / loop iteration."""
    return node_id + "".join(f":{s}" for s in scope)


class WorkflowEngine:
    """Runs one workflow run. ``replay`` holds journaled results (by step key) that are not re-run;
    ``sleep`` serves retry back-off (inject a virtual clock's in tests); ``cancel_check`` is awaited
    before each leaf starts (a cancellation requested from elsewhere, e.g. by run id)."""

    def __init__(
        self,
        parent_loop: StatefulAgentLoop,
        *,
        run_id: str,
        driver_sid: str,
        journal: Journal,
        executor: Executor | None = None,
        budget: SharedBudget | None = None,
        stop: CancellationToken | None = None,
        replay: Mapping[str, AgentResult] | None = None,
        sleep: Sleep | None = None,
        event_session_id: str | None = None,
        cancel_check: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.loop = parent_loop
        self.run_id = run_id
        self.driver_sid = driver_sid
        self.journal = journal
        self.executor: Executor = executor or InProcessExecutor()
        self.budget = budget
        self.stop = stop or CancellationToken()
        self.replay = dict(replay or {})
        self.sleep: Sleep = sleep or asyncio.sleep
        self.event_sid = event_session_id
        self.cancel_check = cancel_check
        self.results: dict[str, AgentResult] = {}
        self.errors: list[str] = []
        self.budget_hit = False
        self._depths: dict[str, int] = {}
        self._leaf_keys: list[str] = []
        self.timed_out: str | None = None

    async def run(self, spec: WorkflowSpec) -> WorkflowResult:
        """Run ``spec`` to a terminal status (never raises for a failing leaf: see ``status``)."""
        self._depths = _scope_depths(spec.root)
        token = _IN_WORKFLOW.set(self.run_id)
        watchdog = None if spec.timeout_s is None else asyncio.ensure_future(self._watchdog(spec.timeout_s))
        watcher = (
            None
            if self.cancel_check is None
            else asyncio.ensure_future(self._cancel_watcher(self.cancel_check))
        )
        final: AgentResult | None = None
        status = "completed"
        try:
            final = await self._node(spec.root, (), {"input": spec.input})
        except _LeafFailed:
            status = "failed"
        except WorkflowRunError as exc:
            self.errors.append(str(exc))
            status = "failed"
        finally:
            _IN_WORKFLOW.reset(token)
            for task in (watchdog, watcher):
                if task is not None:
                    task.cancel()
        if self.timed_out is not None:
            status = "failed"
            self.errors.append(self.timed_out)
        elif status == "completed" and self.stop.is_cancelled():
            status = "cancelled"
        elif status == "completed" and self.budget_hit:
            status = "budget_exceeded"
        usage: dict[str, int] = {}
        for key in self._leaf_keys:
            add_usage(usage, self.results[key].usage)
        return WorkflowResult(
            spec.name, status, dict(self.results), final, usage, list(self.errors), self.run_id
        )

    async def _watchdog(self, timeout_s: float) -> None:
        """Stop the run (cooperatively, like `cancel`) once ``timeout_s`` passed on ``sleep``'s clock."""
        await self.sleep(timeout_s)
        self.timed_out = f"the workflow timed out after {timeout_s:g}s"
        self.stop.cancel("timeout")

    async def _cancel_watcher(self, cancel_check: Callable[[], Awaitable[bool]]) -> None:
        """Poll ``cancel_check`` while the run is active, so a cancellation requested from elsewhere
        (another process, by run id) also interrupts a leaf's model call already in flight.

        Real time, not ``sleep``'s clock: the poll must not consume an injected virtual clock's ticks."""
        while not self.stop.is_cancelled():
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                requested = await cancel_check()
            except Exception:  # a failed poll is not the run's failure: the check before each leaf stays
                continue
            if requested:
                self.stop.cancel("cancelled by run id")
                return

    # -- dispatch ----------------------------------------------------------------------------------

    async def _node(
        self, node: WorkflowNode, scope: tuple[str, ...], env: dict[str, Any]
    ) -> AgentResult | None:
        if isinstance(node, AgentNode):
            return await self._leaf(node, scope, env)
        if isinstance(node, SequenceNode):
            last = None
            for step in node.steps:
                if self._halted():
                    break
                last = await self._node(step, scope, env)
            return last
        if isinstance(node, ParallelNode):
            runs = [lambda b=b: self._node(b, scope, env) for b in node.branches]
            done = await self._fan_out(runs, node.max_concurrency, node.on_error)
            return done[-1] if done else None
        if isinstance(node, ForeachNode):
            return await self._foreach(node, scope, env)
        if isinstance(node, BranchNode):
            return await self._branch(node, scope, env)
        return await self._loop(node, scope, env)

    def _halted(self) -> bool:
        return self.stop.is_cancelled() or self.budget_hit

    async def _fan_out(
        self, runs: Sequence[Callable[[], Awaitable[AgentResult | None]]], limit: int, on_error: str
    ) -> list[AgentResult | None]:
        """Run ``runs`` at most ``limit`` at once, in order of the returned list.

        ``halt``: the first failure cancels the siblings still running and is re-raised;
        ``continue``: failures are recorded (in ``errors``) and the others go on.
        """
        gate = asyncio.Semaphore(limit)

        async def one(run: Callable[[], Awaitable[AgentResult | None]]) -> AgentResult | None:
            async with gate:
                if self._halted():
                    return None
                try:
                    return await run()
                except _LeafFailed as exc:
                    if on_error == "continue":
                        return exc.result
                    raise

        tasks = [asyncio.ensure_future(one(run)) for run in runs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- containers --------------------------------------------------------------------------------

    async def _foreach(
        self, node: ForeachNode, scope: tuple[str, ...], env: dict[str, Any]
    ) -> AgentResult | None:
        items = list(node.items) if node.items is not None else self._items(str(node.items_from), scope)
        runs = [
            lambda i=i, item=item: self._node(node.body, (*scope, str(i)), {**env, node.as_var: item})
            for i, item in enumerate(items)
        ]
        done = await self._fan_out(runs, node.max_concurrency if node.parallel else 1, node.on_error)
        if node.id is None:
            return done[-1] if done else None
        finished = [r for r in done if r is not None]
        # With on_error="continue" the aggregate holds the items that succeeded (failures are in
        # `errors`); otherwise it is complete only when every item succeeded or a hook skipped it.
        tolerated = node.on_error == "continue" or all(r.ok or r.status == "skipped" for r in finished)
        aggregate = AgentResult(
            node_id=node.id,
            status="completed" if tolerated and len(finished) == len(done) else "failed",
            text="\n\n".join(r.text for r in finished if r.ok),
            payload={"items": [r.payload if r.payload is not None else r.text for r in finished if r.ok]},
        )
        for r in finished:
            add_usage(aggregate.usage, r.usage)
        self.results[step_key(node.id, scope)] = aggregate
        return aggregate

    def _items(self, ref: str, scope: tuple[str, ...]) -> list[Any]:
        value = self._resolve(ref, scope)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [line.strip() for line in value.splitlines() if line.strip()]
        if not isinstance(value, list):
            raise WorkflowRunError(f"items_from {ref!r} is not a list (got {type(value).__name__})")
        return value

    async def _branch(
        self, node: BranchNode, scope: tuple[str, ...], env: dict[str, Any]
    ) -> AgentResult | None:
        value = self._resolve(node.on, scope)
        key = (
            value.strip()
            if isinstance(value, str)
            else json.dumps(value)
            if isinstance(value, bool)
            else str(value)
        )
        chosen = node.cases.get(key, node.default)
        if chosen is None:
            raise WorkflowRunError(f"branch on {node.on!r}: no case for {key!r} and no default")
        return await self._node(chosen, scope, env)

    async def _loop(self, node: LoopNode, scope: tuple[str, ...], env: dict[str, Any]) -> AgentResult | None:
        last = None
        for iteration in range(1, node.max_iterations + 1):
            if self._halted():
                return last
            inner = (*scope, str(iteration))
            last = await self._node(node.body, inner, {**env, "iteration": iteration})
            if _holds(node.until, self._resolve(node.until.ref, inner)):
                return last
        if node.on_exhausted == "fail":
            raise WorkflowRunError(
                f"loop {node.id!r}: condition not met after {node.max_iterations} iterations"
            )
        return last

    # -- references --------------------------------------------------------------------------------

    def _lookup(self, ref: str, scope: tuple[str, ...]) -> tuple[bool, Any]:
        node_id, _, key = ref.partition(".")
        depth = self._depths.get(node_id)
        if depth is None:
            return False, None
        result = self.results.get(step_key(node_id, scope[:depth]))
        if result is None or not result.ok:
            return False, None
        if not key:
            return True, result.text
        payload = result.payload
        if isinstance(payload, Mapping) and key in payload:
            return True, payload[key]
        return False, None

    def _resolve(self, ref: str, scope: tuple[str, ...]) -> Any:
        found, value = self._lookup(ref, scope)
        if not found:
            raise WorkflowRunError(f"reference {ref!r} has no completed result to read")
        return value

    # -- leaves ------------------------------------------------------------------------------------

    async def _leaf(self, node: AgentNode, scope: tuple[str, ...], env: dict[str, Any]) -> AgentResult:
        key = step_key(node.id, scope)
        replayed = self.replay.get(key)
        if replayed is not None:
            self._record(key, replayed)
            await self._event(AgentEventType.WORKFLOW_STEP_COMPLETED, key, replayed)
            return replayed
        if (
            self.stop.is_cancelled()
            or self.budget_hit
            or (self.budget is not None and not self.budget.can_spawn())
        ):
            self.budget_hit = self.budget_hit or not self.stop.is_cancelled()
            status = "cancelled" if self.stop.is_cancelled() else "budget_exceeded"
            skipped = AgentResult(node.id, status)
            self.results[key] = skipped
            return skipped
        spec, text = self._prepare(node, scope, env)
        if self.cancel_check is not None and await self.cancel_check():  # cancelled by run id
            self.stop.cancel("cancelled by run id")
            self.results[key] = AgentResult(node.id, "cancelled")
            return self.results[key]
        start = await step_start(self.loop, self.driver_sid, self.run_id, key, node.id, spec, text)
        if start.skip:  # journaled like any outcome, so a resume replays the skip
            result = AgentResult(node.id, "skipped", error=start.reason or None)
        else:
            result = await self._attempts(node, key, spec, start.user_input)
            result = await step_end(self.loop, self.driver_sid, self.run_id, key, result)
        self._record(key, result)
        await self.journal.step_finished(key, result)
        await self._event(AgentEventType.WORKFLOW_STEP_COMPLETED, key, result)
        if not result.ok and result.status not in ("cancelled", "skipped"):
            self.errors.append(f"{key}: {result.error or result.status}")
            if not node.continue_on_error:
                raise _LeafFailed(result)
        return result

    def _record(self, key: str, result: AgentResult) -> None:
        self.results[key] = result
        self._leaf_keys.append(key)
        if self.budget is not None:
            self.budget.commit(result.usage)

    def _prepare(self, node: AgentNode, scope: tuple[str, ...], env: dict[str, Any]) -> tuple[AgentSpec, str]:
        def lookup(ref: str) -> Any:
            return self._lookup(ref, scope)[1]

        text = render(node.input, env, lookup)
        context = [str(self._resolve(ref, scope)) for ref in node.inputs_from]
        if context:
            text += CONTEXT_SEPARATOR + "\n\n".join(context)
        prompt = render(node.spec.system_prompt, env, lookup)
        if prompt == node.spec.system_prompt:
            return node.spec, text
        try:
            spec = dataclasses.replace(node.spec, system_prompt=prompt)
        except AgentSpecError as exc:  # e.g. the prompt rendered to nothing
            raise WorkflowRunError(f"{node.id}: the rendered system_prompt is invalid: {exc}") from None
        return spec, text

    async def _attempts(self, node: AgentNode, key: str, spec: AgentSpec, text: str) -> AgentResult:
        policy = node.retry
        attempts = policy.max_attempts if policy is not None else 1
        idem = f"{self.run_id}:{key}"
        outcome: dict[str, Any] = {}
        for attempt in range(1, attempts + 1):
            sid = leaf_session_id(idem, attempt)
            await self.journal.step_started(key, node.id, sid, attempt)
            await self._event(
                AgentEventType.WORKFLOW_STEP_STARTED, key, AgentResult(node.id, "running", session_id=sid)
            )
            meta = {
                "workflow_run_id": self.run_id,
                "workflow_node_id": node.id,
                "idempotency_key": idem,
                "attempt": attempt,
            }
            outcome = await self.executor.run_agent(
                spec,
                text,
                parent_loop=self.loop,
                driver_sid=self.driver_sid,
                session_id=sid,
                metadata=meta,
                stop_event=self.stop,
            )
            if outcome.get("status") == "completed" or self.stop.is_cancelled():
                break
            if policy is not None and attempt < attempts:
                await self.sleep(policy.delay(attempt))
        status = str(outcome.get("status") or "failed")
        if self.stop.is_cancelled() and status != "completed":
            status = "cancelled"
        return AgentResult(
            node_id=node.id,
            status=status,
            text=str(outcome.get("final_text") or ""),
            payload=outcome.get("output"),
            usage={k: int(v) for k, v in dict(outcome.get("usage") or {}).items() if isinstance(v, int)},
            session_id=outcome.get("session_id"),
            error=outcome.get("error")
            or (None if status == "completed" else f"leaf ended with status {status}"),
            attempts=attempt,
        )

    async def _event(self, kind: AgentEventType, key: str, result: AgentResult) -> None:
        bus = self.loop.event_bus
        if not bus.wants(kind):
            return
        payload = WorkflowStepPayload(
            run_id=self.run_id,
            node_id=result.node_id,
            step_key=key,
            status=result.status,
            session_id=result.session_id,
            usage=dict(result.usage),
            error=result.error,
            replayed=result.replayed,
        )
        await bus.publish_async(AgentEvent(kind, data=payload, session_id=self.event_sid, source="workflow"))


def _holds(until: LoopUntil, value: Any) -> bool:
    op, want = until.op, until.value
    if op == "truthy":
        return bool(value)
    if op == "falsy":
        return not value
    if op == "eq":
        return value == want or (isinstance(value, str) and value.strip() == str(want))
    if op == "ne":
        return not (value == want or (isinstance(value, str) and value.strip() == str(want)))
    if op == "contains":
        return str(want) in value if isinstance(value, str) else want in (value or ())
    try:
        a, b = float(value), float(want)
    except (TypeError, ValueError):
        return False
    return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
