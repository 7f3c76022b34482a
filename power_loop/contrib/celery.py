"""Sends, deliveries, resumes and timer scans as Celery tasks: web processes submit, a worker pool runs.

::

    from celery import Celery
    from power_loop.contrib.celery import install_tasks, submit_send

    app = Celery("agents", broker="amqp://guest:guest@127.0.0.1:5672//", backend="redis://127.0.0.1:6379/0")
    install_tasks(app, make_loop)            # make_loop() -> StatefulAgentLoop (lease_ttl_s set)

    result = submit_send(app, "hello", session_id)   # from any process; result.get() -> dict

Every worker process builds ONE loop with ``loop_factory`` (at its first task) and runs the tasks on
its own asyncio event loop. The tasks are registered as ``power_loop.send``, ``power_loop.deliver``,
``power_loop.resume``, ``power_loop.workflow_leaf`` and ``power_loop.timers_scan``, all with late acknowledgement and
``reject_on_worker_lost``: a task whose worker died is delivered again. Exactly-once comes from the
kernel, not the broker: a send carries a message id (`submit_send` draws one), the store keeps the
id with the message in one transaction, and a repeated task finds it stored and returns the first
send's outcome — finishing it through `StatefulAgentLoop.resume` when the worker running it died —
never storing a second user message. A session driven by another worker (`SessionBusy`: the loop's
lease, so the factory must set ``lease_ttl_s``) retries the task after ``busy_retry_s``.

Workflows: `CeleryExecutor` runs each leaf as a ``power_loop.workflow_leaf`` task
(`power_loop.workflow.run_leaf_once` on the worker): a repeated leaf task adopts the finished leaf
session or finishes the interrupted one under its input id, so a driver resumed on another host
(`resume_run`) never re-runs a finished leaf.

Celery is imported only by this module (``pip install celery[redis]``; from a checkout the
``celery`` extra). See ``docs/scale-out.md``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, LeaseLostError, MissingDependencyError, SessionBusy, SessionPendingError
from ..llm import CancellationToken
from ..loop import FollowUpQueued
from ..workflow import run_leaf_once

if TYPE_CHECKING:
    from celery import Celery, Task
    from celery.result import AsyncResult

    from ..agents import AgentSpec
    from ..llm import CancellationLike
    from ..loop import StatefulAgentLoop, StatefulResult

__all__ = [
    "DELIVER_TASK",
    "RESUME_TASK",
    "SEND_TASK",
    "TIMERS_SCAN_TASK",
    "WORKFLOW_LEAF_TASK",
    "CeleryExecutor",
    "CeleryTasks",
    "install_tasks",
    "leaf_task_args",
    "outcome_dict",
    "submit_deliver",
    "submit_send",
]

SEND_TASK = "power_loop.send"
DELIVER_TASK = "power_loop.deliver"
RESUME_TASK = "power_loop.resume"
WORKFLOW_LEAF_TASK = "power_loop.workflow_leaf"
TIMERS_SCAN_TASK = "power_loop.timers_scan"

log = logging.getLogger("power_loop.contrib.celery")

_T = TypeVar("_T")
LoopFactory = Callable[[], "StatefulAgentLoop"]


def _require_celery() -> None:
    try:
        import celery  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("celery[redis]", "celery", "power_loop.contrib.celery") from exc


def outcome_dict(result: StatefulResult | FollowUpQueued) -> dict[str, Any]:
    """A task's JSON-friendly return value: a send's status, final text and rounds, or a queued
    delivery's ``queued`` status with its accepted/duplicate counts."""
    if not isinstance(result, FollowUpQueued):
        return {
            "session_id": result.session_id,
            "status": result.status,
            "final_text": result.final_text,
            "rounds": result.rounds,
        }
    return {
        "session_id": result.session_id,
        "status": "queued",
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "accepted_ids": list(result.accepted_ids),
    }


class _WorkerRuntime:
    """One asyncio event loop and one `StatefulAgentLoop` per worker process (made at first use, so a
    prefork child builds its own after the fork)."""

    def __init__(self, factory: LoopFactory) -> None:
        self._factory = factory
        self._pid = -1
        self._events: asyncio.AbstractEventLoop | None = None
        self._loop: StatefulAgentLoop | None = None

    def run(self, work: Callable[[StatefulAgentLoop], Coroutine[Any, Any, _T]]) -> _T:
        if self._pid != os.getpid() or self._events is None:
            self._pid, self._events, self._loop = os.getpid(), asyncio.new_event_loop(), None
        events = self._events
        if self._loop is None:
            self._loop = self._factory()
        return events.run_until_complete(work(self._loop))

    def close(self) -> None:
        """Close the loop (its store) and the event loop of this process, if made."""
        if self._events is not None and self._pid == os.getpid():
            if self._loop is not None:
                self._events.run_until_complete(self._loop.aclose())
            self._events.close()
        self._events, self._loop = None, None


@dataclass(frozen=True)
class CeleryTasks:
    """The tasks `install_tasks` registered, and the per-process runtime they share."""

    send: Task
    deliver: Task
    resume: Task
    timers_scan: Task
    workflow_leaf: Task
    runtime: _WorkerRuntime


@dataclass(frozen=True)
class _Retrying:
    """Runs a task's work on the worker's loop; a busy or pending session becomes a Celery retry."""

    runtime: _WorkerRuntime
    busy_retry_s: float
    pending_retries: int

    def __call__(
        self,
        task: Task,
        work: Callable[[StatefulAgentLoop], Coroutine[Any, Any, Any]],
        convert: Callable[[Any], dict[str, Any]] = outcome_dict,
    ) -> dict[str, Any]:
        try:
            return convert(self.runtime.run(work))
        except (SessionBusy, LeaseLostError) as exc:
            # Another worker drives the session (or took it over from this stalled one): run again
            # later, when the repeated message id returns that worker's outcome.
            raise task.retry(exc=exc, countdown=self.busy_retry_s, max_retries=None) from exc
        except SessionPendingError as exc:
            raise task.retry(exc=exc, countdown=self.busy_retry_s, max_retries=self.pending_retries) from exc


def install_tasks(
    app: Celery,
    loop_factory: LoopFactory,
    *,
    busy_retry_s: float = 1.0,
    pending_retries: int = 60,
    leaf_lease_ttl_s: float = 30.0,
) -> CeleryTasks:
    """Register the ``power_loop.*`` tasks on ``app``; each worker process runs them on the loop
    ``loop_factory()`` returns (give it ``lease_ttl_s`` so two workers never drive one session).

    A task finding its session driven by another worker retries after ``busy_retry_s`` seconds; a send
    behind another send's interrupted tool calls (whose own task is being delivered again) retries up
    to ``pending_retries`` times. A workflow leaf always holds its session's lease, for
    ``leaf_lease_ttl_s`` seconds past a dead worker (how long its repeated task waits to take over)."""
    _require_celery()
    runtime = _WorkerRuntime(loop_factory)
    retrying = _Retrying(runtime, busy_retry_s, pending_retries)
    # max_retries=None on the task: a busy session retries until it is free (retry(max_retries=None)
    # alone means "the task's default", 3, after which the send would fail).
    # shared=False: Celery would otherwise add these tasks to every app made later in the process too.
    options: dict[str, Any] = {
        "shared": False,
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "max_retries": None,
    }

    @app.task(name=SEND_TASK, **options)  # type: ignore[untyped-decorator]
    def send(self: Task, text: str, session_id: str, message_id: str | None = None) -> dict[str, Any]:
        return retrying(self, lambda loop: loop.send(text, session_id, message_id=message_id))

    @app.task(name=DELIVER_TASK, **options)  # type: ignore[untyped-decorator]
    def deliver(
        self: Task, text: str, session_id: str, item_id: str | None = None, enqueue_only: bool = False
    ) -> dict[str, Any]:
        return retrying(
            self, lambda loop: loop.deliver(text, session_id, item_id=item_id, enqueue_only=enqueue_only)
        )

    @app.task(name=RESUME_TASK, **options)  # type: ignore[untyped-decorator]
    def resume(self: Task, session_id: str) -> dict[str, Any]:
        return retrying(self, lambda loop: loop.resume(session_id))

    @app.task(name=TIMERS_SCAN_TASK, **options)  # type: ignore[untyped-decorator]
    def timers_scan(self: Task) -> int:
        async def scan(loop: StatefulAgentLoop) -> int:
            from ..loop import TimerRunner

            runner = TimerRunner(loop)
            await runner.recover_stale()
            return await runner.scan_once()

        return runtime.run(scan)

    leaf = _install_leaf_task(app, options, retrying, leaf_lease_ttl_s)
    return CeleryTasks(send, deliver, resume, timers_scan, leaf, runtime)


def _install_leaf_task(app: Celery, options: dict[str, Any], retrying: _Retrying, lease_ttl_s: float) -> Task:
    """Register ``power_loop.workflow_leaf``: `run_leaf_once` on the worker's loop."""

    @app.task(name=WORKFLOW_LEAF_TASK, **options)  # type: ignore[untyped-decorator]
    def workflow_leaf(
        self: Task,
        spec: dict[str, Any],
        user_input: str,
        driver_sid: str,
        session_id: str,
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        def work(loop: StatefulAgentLoop) -> Coroutine[Any, Any, dict[str, Any]]:
            return run_leaf_once(
                loop,
                spec,
                user_input,
                driver_sid=driver_sid,
                session_id=session_id,
                metadata=metadata,
                lease_ttl_s=lease_ttl_s,
            )

        return retrying(self, work, dict)

    leaf: Task = workflow_leaf
    return leaf


def submit_send(
    app: Celery, text: str, session_id: str, *, message_id: str | None = None, **options: Any
) -> AsyncResult:
    """Submit one send (``power_loop.send``) from any process; ``options`` go to ``apply_async``
    (``queue=``, ``countdown=``, …). ``message_id`` defaults to a fresh uuid, so a task the broker
    delivers twice is stored once; pass your own to make a resubmission idempotent too."""
    _require_celery()
    message_id = message_id if message_id is not None else uuid.uuid4().hex
    return app.send_task(SEND_TASK, args=(text, session_id, message_id), **options)


def submit_deliver(
    app: Celery,
    text: str,
    session_id: str,
    *,
    item_id: str | None = None,
    enqueue_only: bool = False,
    **options: Any,
) -> AsyncResult:
    """Submit one delivery (``power_loop.deliver``): sent when the session is free, else queued for the
    send driving it; ``item_id`` defaults to a fresh uuid (stored once however often delivered)."""
    _require_celery()
    item_id = item_id if item_id is not None else uuid.uuid4().hex
    return app.send_task(DELIVER_TASK, args=(text, session_id, item_id, enqueue_only), **options)


def leaf_task_args(
    spec: AgentSpec, user_input: str, driver_sid: str, session_id: str, metadata: Mapping[str, Any]
) -> tuple[dict[str, Any], str, str, str, dict[str, Any]]:
    """The JSON-ready arguments of one ``power_loop.workflow_leaf`` task."""
    return spec.to_dict(), user_input, driver_sid, session_id, dict(metadata)


def _leaf_failed(session_id: str, error: str, status: str = "failed") -> dict[str, Any]:
    return {
        "session_id": session_id,
        "status": status,
        "final_text": "",
        "usage": {},
        "output": None,
        "rounds": 0,
        "error": error,
    }


def _leaf_outcome(session_id: str, result: AsyncResult) -> dict[str, Any]:
    """A finished task's outcome dict (its result is cached on ``result`` by the poll that saw it end)."""
    value = result.result
    if result.successful() and isinstance(value, dict):
        return {"session_id": session_id, "usage": {}, "output": None, "rounds": 0, **value}
    if isinstance(value, BaseException):
        return _leaf_failed(session_id, f"leaf task {result.state}: {type(value).__name__}: {value}")
    return _leaf_failed(session_id, f"leaf task {result.state}: {value!r}")


def _ready_ids(results: list[AsyncResult]) -> list[str]:
    """The ids of the tasks that ended (run on a worker thread). A key-value result backend (Redis) is
    asked about all of them in one ``MGET``, then only the tasks with a stored state are read one by
    one; any other backend is read once per task."""
    if not results:
        return []
    backend = getattr(results[0], "backend", None)
    mget, key_for = getattr(backend, "mget", None), getattr(backend, "get_key_for_task", None)
    if mget is not None and key_for is not None:
        values = mget([key_for(result.id) for result in results])
        if isinstance(values, list) and len(values) == len(results):
            results = [result for result, value in zip(results, values, strict=True) if value is not None]
    return [result.id for result in results if result.ready()]


class CeleryExecutor:
    """Runs each workflow leaf as a ``power_loop.workflow_leaf`` task on a Celery worker pool.

    Every worker shares the driver's store (PostgreSQL / MySQL) and registered the task with
    `install_tasks`. Submitting and waiting never block the event loop: one poller per executor
    checks every leaf still waiting once per ``poll_interval_s``, in a single call on a worker
    thread, however many leaves wait. ``queue`` routes the tasks; ``timeout_s`` bounds the wait for
    one leaf (None: no bound). A stopped run (``stop_event``) or a timeout revokes the task and stops
    waiting — a leaf a worker already started finishes there and is adopted by a later `resume_run`.
    A task that failed, was revoked or could not be submitted is a ``status="failed"`` outcome.
    """

    def __init__(
        self,
        app: Celery,
        *,
        queue: str | None = None,
        poll_interval_s: float = 0.5,
        timeout_s: float | None = None,
    ) -> None:
        _require_celery()
        if not poll_interval_s > 0 or (timeout_s is not None and not timeout_s > 0):
            raise ConfigError("CeleryExecutor needs poll_interval_s > 0 and timeout_s None or > 0")
        self.app = app
        self.queue = queue
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self._waiting: dict[str, tuple[AsyncResult, asyncio.Future[None]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def run_agent(
        self,
        spec: AgentSpec,
        user_input: str,
        *,
        parent_loop: StatefulAgentLoop,
        driver_sid: str,
        session_id: str,
        metadata: Mapping[str, Any],
        stop_event: CancellationLike = None,
    ) -> dict[str, Any]:
        """Submit the leaf as a task and wait for its outcome (``parent_loop`` is not used: the worker
        runs the leaf on its own loop, against the same store)."""
        stop = CancellationToken.from_any(stop_event)
        if stop.is_cancelled():
            return _leaf_failed(session_id, "cancelled before the leaf was submitted", "cancelled")
        args = leaf_task_args(spec, user_input, driver_sid, session_id, metadata)
        options = {} if self.queue is None else {"queue": self.queue}
        try:
            result = await asyncio.to_thread(self.app.send_task, WORKFLOW_LEAF_TASK, args=args, **options)
        except Exception as exc:  # the broker is unreachable: a failed leaf (the engine's retry applies)
            return _leaf_failed(session_id, f"could not submit the leaf task: {type(exc).__name__}: {exc}")
        why = await self._wait(result, stop)
        if why is None:
            return _leaf_outcome(session_id, result)
        await asyncio.to_thread(self._revoke, result.id)
        return _leaf_failed(session_id, why, "cancelled" if stop.is_cancelled() else "failed")

    async def _wait(self, result: AsyncResult, stop: CancellationToken) -> str | None:
        """None once the task ended; else why the wait stopped (the run was stopped, or timed out)."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        self._waiting[result.id] = (result, ended)
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:
            self._poller = loop.create_task(self._poll())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({ended, stopped}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the engine cancelled this leaf (a sibling failed): revoke it
            loop.run_in_executor(None, self._revoke, result.id)
            raise
        finally:
            stopped.cancel()
            self._waiting.pop(result.id, None)
        if ended.done():
            return None
        return "cancelled while the leaf ran" if stop.is_cancelled() else f"timed out after {self.timeout_s}s"

    async def _poll(self) -> None:
        """Resolve the waiting leaves of this event loop as their tasks end; exits when none wait."""
        loop = asyncio.get_running_loop()
        while True:
            mine = {tid: entry for tid, entry in self._waiting.items() if entry[1].get_loop() is loop}
            if not mine:
                return
            await asyncio.sleep(self.poll_interval_s)
            results = [result for tid, (result, _) in mine.items() if tid in self._waiting]
            try:
                ready = await asyncio.to_thread(_ready_ids, results)
            except Exception as exc:  # the result backend hiccuped: ask again at the next tick
                log.warning("polling %d leaf task(s) failed: %s", len(results), exc)
                continue
            for tid in ready:
                entry = self._waiting.get(tid)
                if entry is not None and not entry[1].done():
                    entry[1].set_result(None)

    def _revoke(self, task_id: str) -> None:
        try:
            self.app.control.revoke(task_id)
        except Exception as exc:  # best effort: a leaf that runs anyway is adopted by a later resume
            log.warning("revoking leaf task %s failed: %s", task_id, exc)
