"""Sends, deliveries, resumes and timer scans as Celery tasks: web processes submit, a worker pool runs.

::

    from celery import Celery
    from power_loop.contrib.celery import install_tasks, submit_send

    app = Celery("agents", broker="amqp://guest:guest@127.0.0.1:5672//", backend="redis://127.0.0.1:6379/0")
    install_tasks(app, make_loop)            # make_loop() -> StatefulAgentLoop (lease_ttl_s set)

    result = submit_send(app, "hello", session_id)   # from any process; result.get() -> dict

Every worker process builds ONE loop with ``loop_factory`` (at its first task) and runs the tasks on
its own asyncio event loop. The tasks are registered as ``power_loop.send``, ``power_loop.deliver``,
``power_loop.resume`` and ``power_loop.timers_scan``, all with late acknowledgement and
``reject_on_worker_lost``: a task whose worker died is delivered again. Exactly-once comes from the
kernel, not the broker: a send carries a message id (`submit_send` draws one), the store keeps the
id with the message in one transaction, and a repeated task finds it stored and returns the first
send's outcome — finishing it through `StatefulAgentLoop.resume` when the worker running it died —
never storing a second user message. A session driven by another worker (`SessionBusy`: the loop's
lease, so the factory must set ``lease_ttl_s``) retries the task after ``busy_retry_s``.

Celery is imported only by this module (``pip install celery[redis]``; from a checkout the
``celery`` extra). See ``docs/scale-out.md``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import LeaseLostError, MissingDependencyError, SessionBusy, SessionPendingError
from ..loop import FollowUpQueued

if TYPE_CHECKING:
    from celery import Celery, Task
    from celery.result import AsyncResult

    from ..loop import StatefulAgentLoop, StatefulResult

__all__ = [
    "DELIVER_TASK",
    "RESUME_TASK",
    "SEND_TASK",
    "TIMERS_SCAN_TASK",
    "CeleryTasks",
    "install_tasks",
    "outcome_dict",
    "submit_deliver",
    "submit_send",
]

SEND_TASK = "power_loop.send"
DELIVER_TASK = "power_loop.deliver"
RESUME_TASK = "power_loop.resume"
TIMERS_SCAN_TASK = "power_loop.timers_scan"

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
    runtime: _WorkerRuntime


def install_tasks(
    app: Celery, loop_factory: LoopFactory, *, busy_retry_s: float = 1.0, pending_retries: int = 60
) -> CeleryTasks:
    """Register the ``power_loop.*`` tasks on ``app``; each worker process runs them on the loop
    ``loop_factory()`` returns (give it ``lease_ttl_s`` so two workers never drive one session).

    A task finding its session driven by another worker retries after ``busy_retry_s`` seconds; a send
    behind another send's interrupted tool calls (whose own task is being delivered again) retries up
    to ``pending_retries`` times."""
    _require_celery()
    runtime = _WorkerRuntime(loop_factory)
    # max_retries=None on the task: a busy session retries until it is free (retry(max_retries=None)
    # alone means "the task's default", 3, after which the send would fail).
    options: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "max_retries": None,
    }

    def retrying(task: Task, work: Callable[[StatefulAgentLoop], Coroutine[Any, Any, Any]]) -> dict[str, Any]:
        try:
            return outcome_dict(runtime.run(work))
        except (SessionBusy, LeaseLostError) as exc:
            # Another worker drives the session (or took it over from this stalled one): run again
            # later, when the repeated message id returns that worker's outcome.
            raise task.retry(exc=exc, countdown=busy_retry_s, max_retries=None) from exc
        except SessionPendingError as exc:
            raise task.retry(exc=exc, countdown=busy_retry_s, max_retries=pending_retries) from exc

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

    return CeleryTasks(send, deliver, resume, timers_scan, runtime)


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
