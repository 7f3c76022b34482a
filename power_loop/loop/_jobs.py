"""`LoopJobs`: what runs for a session, and stopping it (``loop.list_jobs`` / ``loop.stop_job``).

A session's jobs, by id:

* ``send`` — the running send (or resume / input submission). Run by this loop: it is stopped
  through its stop token, observed at the send's check points (round start, before each tool; the
  in-flight model call too when the send was given a ``stop_event``) and ending it ``cancelled``. Run
  by another process holding the session's lease (``lease_ttl_s``): a durable stop request naming
  that lease (holder and epoch) is written to the session's runtime state; the holder's watcher
  reads it every ``min(lease_ttl_s / 3, 2 s)`` and cancels the same way. A lease epoch is never
  reused, so a request that arrives after its send ended stops nothing later.
* ``bg:<task_id>`` — a ``background_run`` task (``background_tasks``): its process group is killed
  (:func:`power_loop.tools.stop_background_task`; same host only).
* ``wf:<run_id>`` — a workflow run the session owns (``workflow_journal``): a cancel request is
  journaled, which the engine checks before each leaf (the loop does not import the workflow layer;
  it writes the same mark ``cancel_workflow`` writes).
* ``timer:<timer_id>`` — an armed durable timer: cancelled in the store.

Everything but a send run by a loop without leases is durable, so any process sees and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from ..errors import JobNotFoundError, SessionNotFoundError
from ..llm import CancellationToken

if TYPE_CHECKING:
    from ..store import LeaseToken, SessionStore
    from ._guard import SessionGuard

__all__ = ["STOP_SEND_KEY", "Job", "LoopJobs"]

#: The session runtime-state key of a durable request to stop the running send.
STOP_SEND_KEY = "power_loop.stop_send"
#: The workflow journal's run row and cancel mark (``power_loop.workflow``'s ``RUN_KEY`` / ``CANCEL_KEY``).
_WF_RUN_KEY = "@run"
_WF_CANCEL_KEY = "@cancel"
_DEFAULT_REASON = "stopped by stop_job"


@dataclass(frozen=True, slots=True)
class Job:
    """One job of a session: ``id`` (what `stop_job` takes), ``kind`` (``send``, ``background``,
    ``workflow``, ``timer``), ``status`` (``running``; a timer's ``armed`` / ``firing``),
    ``started_at`` (epoch ms; None for a send run by another process) and a short ``detail`` (the
    command, the workflow name, the timer note, who runs the send)."""

    id: str
    kind: str
    status: str
    started_at: int | None
    detail: str = ""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _RunningSend:
    __slots__ = ("started_at", "token")

    def __init__(self, token: CancellationToken) -> None:
        self.token = token
        self.started_at = _now_ms()


class LoopJobs:
    """One loop's jobs view: the sends it runs now, and the store's durable jobs."""

    __slots__ = ("_guard", "_sends")

    def __init__(self, guard: SessionGuard) -> None:
        self._guard = guard
        self._sends: dict[str, _RunningSend] = {}

    def running(self, session_id: str, token: CancellationToken | None, store: SessionStore) -> _SendScope:
        """``async with`` around a send: registers it (entering gives its stop token) and, when the
        session is leased, watches for a stop requested by another process."""
        return _SendScope(self, session_id, token, store)

    async def list_jobs(self, store: SessionStore, session_id: str) -> list[Job]:
        await _require_session(store, session_id)
        jobs: list[Job] = []
        send = await self._send_job(store, session_id)
        if send is not None:
            jobs.append(send)
        jobs.extend(
            Job(f"bg:{r.task_id}", "background", r.status, r.created_at, r.command)
            for r in await store.list_background_tasks(session_id)
            if not r.finished
        )
        jobs.extend(
            Job(f"wf:{r.run_id}", "workflow", r.status, r.created_at, str(r.body.get("workflow") or ""))
            for r in await store.list_workflow_runs(session_id)
            if r.status == "running"
        )
        jobs.extend(
            Job(f"timer:{t.timer_id}", "timer", t.status, t.created_at, t.note)
            for t in await store.list_timers(session_id)
        )
        return jobs

    async def stop_job(self, store: SessionStore, session_id: str, job_id: str, reason: str) -> bool:
        await _require_session(store, session_id)
        reason = reason or _DEFAULT_REASON
        kind, _, ident = job_id.partition(":") if isinstance(job_id, str) else ("", "", "")
        if job_id == "send":
            return await self._stop_send(store, session_id, reason)
        if kind == "bg" and ident:
            from ..tools import stop_background_task  # the tools layer, loaded by whoever ran one

            return await stop_background_task(store, session_id, ident)
        if kind == "wf" and ident:
            return await _stop_workflow(store, session_id, ident, reason)
        if kind == "timer" and ident.isdigit():
            return await _stop_timer(store, session_id, int(ident))
        raise JobNotFoundError(session_id, str(job_id))

    async def _send_job(self, store: SessionStore, session_id: str) -> Job | None:
        running = self._sends.get(session_id)
        if running is not None:
            return Job("send", "send", "running", running.started_at, "this loop")
        lease = await _live_lease(store, session_id)
        if lease is None:
            return None
        return Job("send", "send", "running", None, f"held by {lease.holder}")

    async def _stop_send(self, store: SessionStore, session_id: str, reason: str) -> bool:
        running = self._sends.get(session_id)
        if running is not None:
            running.token.cancel(reason)
            return True
        lease = await _live_lease(store, session_id)
        if lease is None:
            return False  # nothing runs (or it runs in a process without leases: not reachable)
        request = {"holder": lease.holder, "epoch": lease.epoch, "reason": reason, "requested_at": _now_ms()}
        await store.set_runtime_state(session_id, STOP_SEND_KEY, request)
        return True


async def _require_session(store: SessionStore, session_id: str) -> None:
    if await store.get_session(session_id) is None:
        raise SessionNotFoundError(session_id)


async def _live_lease(store: SessionStore, session_id: str) -> LeaseToken | None:
    lease = await store.get_lease(session_id)
    if lease is None or not lease.holder or lease.expires_at_ms <= _now_ms():
        return None
    return lease


async def _stop_workflow(store: SessionStore, session_id: str, run_id: str, reason: str) -> bool:
    head = await store.get_workflow_record(session_id, run_id, _WF_RUN_KEY)
    if head is None:
        raise JobNotFoundError(session_id, f"wf:{run_id}")
    if head.status != "running":
        return False
    await store.claim_workflow_record(
        session_id, run_id, _WF_CANCEL_KEY, status="requested", body={"reason": reason}
    )
    return True


async def _stop_timer(store: SessionStore, session_id: str, timer_id: int) -> bool:
    timer = await store.get_timer(session_id, timer_id)
    if timer is None:
        raise JobNotFoundError(session_id, f"timer:{timer_id}")
    return await store.cancel_timer(session_id, timer_id)


class _SendScope:
    """:meth:`LoopJobs.running`: a class (it runs on every send), not a generator context manager."""

    __slots__ = ("_jobs", "_session_id", "_store", "_token", "_watcher")

    def __init__(
        self, jobs: LoopJobs, session_id: str, token: CancellationToken | None, store: SessionStore
    ) -> None:
        self._jobs = jobs
        self._session_id = session_id
        self._token = token if token is not None else CancellationToken.never()
        self._store = store
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CancellationToken:
        jobs, sid = self._jobs, self._session_id
        jobs._sends[sid] = _RunningSend(self._token)
        lease = jobs._guard.lease_token(sid)
        ttl_s = jobs._guard.ttl_s
        if lease is not None and ttl_s is not None:
            interval = max(0.05, min(ttl_s / 3, 2.0))
            self._watcher = asyncio.ensure_future(_watch(self._store, lease, self._token, interval))
        return self._token

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._jobs._sends.pop(self._session_id, None)
        if self._watcher is not None:
            self._watcher.cancel()  # it only ever sleeps or reads: nothing to wait for


async def _watch(store: SessionStore, lease: LeaseToken, token: CancellationToken, interval: float) -> None:
    """Cancel ``token`` once a stop request naming ``lease`` appears (polled every ``interval`` s)."""
    sid = lease.session_id
    while not token.is_cancelled():
        await asyncio.sleep(interval)
        try:
            request = await store.get_runtime_state(sid, STOP_SEND_KEY)
        except Exception:  # a store hiccup: look again at the next tick
            continue
        if (
            isinstance(request, dict)
            and request.get("holder") == lease.holder
            and request.get("epoch") == lease.epoch
        ):
            token.cancel(str(request.get("reason") or _DEFAULT_REASON))
            with contextlib.suppress(Exception):
                await store.delete_runtime_state(sid, STOP_SEND_KEY)
            return
