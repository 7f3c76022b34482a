"""Real parts for workflows on Celery: RabbitMQ, Redis, PostgreSQL and two ``celery worker`` processes
running a 50-item foreach through `CeleryExecutor`. A worker SIGKILLed inside a leaf's tool call, and
the driver process SIGKILLed mid-run then resumed from this process: every leaf ends with exactly one
finished session, and no leaf that had finished is run again (the model logs every call, per leaf).

Skipped with the reason when RabbitMQ, Redis or the PostgreSQL test DSN is missing — except under
``CI``, where that fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.contrib.celery import CeleryExecutor
from power_loop.testing import ScriptedLLM
from power_loop.workflow import WorkflowResult, create_workflow, leaf_session_id, resume_run

pytest.importorskip("celery")
from celery_parts import BACKEND, BROKER, Workers, drop_tables, require_parts
from celery_worker_app import calls_file, foreach_spec, killed_flag, make_app

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ITEMS = 50
MIDWAY = 20  # leaves finished before a kill
DEADLINE_S = 90.0


def _items(slow: int) -> list[str]:
    return [f"item {i}" + (" [slow]" if i == slow else "") for i in range(ITEMS)]


@pytest.fixture
def wf_parts(tmp_path: Path) -> Iterator[dict[str, Any]]:
    dsn = require_parts()
    queue = f"pl-wf-{secrets.token_hex(4)}"
    prefix = f"celwf{secrets.token_hex(3)}_"
    markers = tmp_path / "markers"
    (markers / "killed").mkdir(parents=True)
    (markers / "calls").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        "PL_TEST_BROKER": BROKER,
        "PL_TEST_BACKEND": BACKEND,
        "PL_TEST_QUEUE": queue,
        "PL_TEST_DSN": dsn,
        "PL_TEST_PREFIX": prefix,
        "PL_TEST_MARKERS": str(markers),
        "PL_TEST_CALLS": str(markers / "calls"),
    }
    app = make_app(BROKER, BACKEND, queue)
    workers = Workers(env, tmp_path)
    try:
        yield {"app": app, "dsn": dsn, "prefix": prefix, "markers": markers, "workers": workers, "env": env}
    finally:
        workers.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        asyncio.run(drop_tables(dsn, prefix))


def _calls(parts: dict[str, Any], items: list[str]) -> dict[str, list[int]]:
    """Per item: the times (ns) of the model calls its leaf made."""
    out: dict[str, list[int]] = {}
    for item in items:
        path = calls_file(parts["markers"] / "calls", item)
        lines = path.read_text().splitlines() if path.exists() else []
        out[item] = [int(line.split()[0]) for line in lines]
    return out


def _slow_marker_pid(parts: dict[str, Any], deadline: float) -> int:
    """The pid of the worker inside the slow item's tool call (its marker file), once there is one."""
    markers: Path = parts["markers"]
    while time.monotonic() < deadline:
        for marker in (m for m in markers.iterdir() if m.is_file()):
            if "[slow]" in (marker.read_text() if marker.exists() else ""):
                return int(marker.name.split("-")[0])
        time.sleep(0.2)
    raise AssertionError("no worker was seen inside the slow leaf's tool call")


def _wait_finished(parts: dict[str, Any], items: list[str], count: int, deadline: float) -> None:
    """Wait until ``count`` leaves made both their model calls (the leaves run in no fixed order)."""
    while sum(len(times) >= 2 for times in _calls(parts, items).values()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} leaves finished"
        time.sleep(0.2)


def _kill_worker_in_slow_leaf(parts: dict[str, Any], items: list[str], slow: int, deadline: float) -> int:
    """Once the slow leaf runs and MIDWAY others finished, SIGKILL the worker running the slow leaf,
    let its re-run pass, restart it; the kill time (ns)."""
    slow_item = items[slow]
    pid = _slow_marker_pid(parts, deadline)
    _wait_finished(parts, items, MIDWAY, deadline)  # the other worker goes on meanwhile
    name = parts["workers"].kill_pid(pid)
    assert name is not None, pid
    killed_at = time.time_ns()
    for marker in parts["markers"].iterdir():
        if marker.is_file() and marker.name.startswith(f"{pid}-"):
            marker.unlink(missing_ok=True)  # a SIGKILLed tool never cleans up
    killed_flag(parts["markers"], slow_item).touch()
    parts["workers"].start(name)
    return killed_at


async def _leaf_sessions(loop: StatefulAgentLoop, run_id: str) -> list[tuple[list[str], list[str]]]:
    """Per item, in order: its leaf session's user messages and final answers."""
    out = []
    for i in range(ITEMS):
        messages = await loop.get_messages(leaf_session_id(f"{run_id}:leaf:{i}"))
        users = [m["content"] for m in messages if m["role"] == "user"]
        finals = [m["content"] for m in messages if m["role"] == "assistant" and not m.get("tool_calls")]
        out.append((users, finals))
    return out


async def _check_run(parts: dict[str, Any], result: WorkflowResult, items: list[str]) -> None:
    assert result.status == "completed", result.errors
    assert [result.results[f"leaf:{i}"].text for i in range(ITEMS)] == [f"answer: {x}" for x in items]
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=parts["dsn"], table_prefix=parts["prefix"])
    try:
        store = await loop.ensure_store()
        driver = await store.get_session(leaf_session_id(f"{result.run_id}:leaf:0"))
        assert driver is not None and driver.parent_session_id is not None
        children = await store.list_children(driver.parent_session_id)
        assert len(children) == ITEMS  # one leaf session per item, no second attempt
        for item, (users, finals) in zip(items, await _leaf_sessions(loop, result.run_id), strict=True):
            assert users == [item], users  # the input stored once
            assert finals == [f"answer: {item}"], finals  # finished exactly once
    finally:
        await loop.aclose()


def test_foreach_of_50_leaves_on_two_workers_one_killed_midway_reruns_no_finished_leaf(
    wf_parts: dict[str, Any],
) -> None:
    parts, started = wf_parts, time.monotonic()
    deadline = started + DEADLINE_S
    items = _items(slow=20)
    for name in ("w1", "w2"):
        parts["workers"].start(name)

    async def drive() -> tuple[WorkflowResult, int]:
        loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=parts["dsn"], table_prefix=parts["prefix"])
        async with loop:
            executor = CeleryExecutor(parts["app"], poll_interval_s=0.2, timeout_s=DEADLINE_S)
            workflow = create_workflow(
                foreach_spec(items, max_concurrency=ITEMS), parent_loop=loop, executor=executor
            )
            run = asyncio.ensure_future(workflow.run())
            killed_at = await asyncio.to_thread(_kill_worker_in_slow_leaf, parts, items, 20, deadline)
            return await run, killed_at

    result, killed_at = asyncio.run(drive())
    asyncio.run(_check_run(parts, result, items))
    calls = _calls(parts, items)
    finished_before = [item for item, times in calls.items() if len(times) >= 2 and times[1] < killed_at]
    rerun = [item for item in finished_before if any(t > killed_at for t in calls[item])]
    assert rerun == []
    assert {item: len(times) for item, times in calls.items()} == {item: 2 for item in items}
    assert len(finished_before) >= MIDWAY
    print(
        f"\ncelery workflow: items={ITEMS} workers=2 killed=1 (inside leaf 20's tool call) "
        f"finished_before_kill={len(finished_before)} rerun_after={len(rerun)} "
        f"model_calls={sum(len(t) for t in calls.values())} wall={time.monotonic() - started:.1f}s"
    )


class RecordingApp:
    """The Celery app, recording which task each leaf session was submitted as; the leaves in
    ``routes`` (session id -> queue) go to a queue of their own."""

    def __init__(self, app: Any, routes: dict[str, str]) -> None:
        self.app, self.control, self.routes = app, app.control, routes
        self.submitted: dict[str, Any] = {}

    def send_task(self, name: str, args: tuple[Any, ...], **options: Any) -> Any:
        if args[3] in self.routes:
            options = {**options, "queue": self.routes[args[3]]}
        result = self.app.send_task(name, args=args, **options)
        self.submitted[args[3]] = result  # args: spec, input, driver, session id, metadata
        return result

    def state_of(self, session_id: str) -> str | None:
        result = self.submitted.get(session_id)
        return None if result is None else str(result.state)


def _start_driver(parts: dict[str, Any], owner: str, items: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "celery_wf_driver.py"), owner, json.dumps(items)],
        env=parts["env"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _completed_steps(parts: dict[str, Any], owner: str, run_id: str) -> set[str]:
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=parts["dsn"], table_prefix=parts["prefix"])
    try:
        store = await loop.ensure_store()
        rows = await store.list_workflow_records(owner, run_id)
        return {r.step_key for r in rows if r.status == "completed" and not r.step_key.startswith("@")}
    finally:
        await loop.aclose()


async def _new_owner(parts: dict[str, Any]) -> str:
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=parts["dsn"], table_prefix=parts["prefix"])
    try:
        return await loop.new_session()
    finally:
        await loop.aclose()


def test_driver_killed_mid_foreach_is_resumed_from_another_process_replaying_finished_leaves(
    wf_parts: dict[str, Any],
) -> None:
    parts, started = wf_parts, time.monotonic()
    deadline = started + DEADLINE_S
    items = _items(slow=30)
    for name in ("w1", "w2"):
        parts["workers"].start(name)
    owner = asyncio.run(_new_owner(parts))
    driver = _start_driver(parts, owner, items)
    try:
        assert driver.stdout is not None
        run_id = driver.stdout.readline().strip()
        assert run_id, driver.stderr.read() if driver.stderr else ""
        _slow_marker_pid(parts, deadline)  # leaf 30 is inside its tool call: the run cannot end
        _wait_finished(parts, items, MIDWAY, deadline)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    killed_at = time.time_ns()
    journaled = asyncio.run(_completed_steps(parts, owner, run_id))
    slow_sid = leaf_session_id(f"{run_id}:leaf:30")
    # Leaf 30's resubmission goes to a third worker of its own (the first two may hold it prefetched
    # behind the blocked leaf), so it meets the first run for sure.
    side_queue = parts["env"]["PL_TEST_QUEUE"] + "-side"
    side = Workers({**parts["env"], "PL_TEST_QUEUE": side_queue}, parts["markers"].parent)
    side.start("w3")
    app = RecordingApp(parts["app"], {slow_sid: side_queue})

    def release_slow_leaf() -> str:
        # The resumed driver resubmits leaf 30 while its first task still runs on a live worker: the
        # copy must wait (SessionBusy, retried) — seen as its task's RETRY state — not clobber it.
        while time.monotonic() < deadline:
            state = app.state_of(slow_sid)
            if state == "RETRY":
                break
            time.sleep(0.2)
        killed_flag(parts["markers"], items[30]).touch()  # leaf 30 goes on, on its first worker
        return str(state)

    async def resume() -> tuple[WorkflowResult, str]:
        loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=parts["dsn"], table_prefix=parts["prefix"])
        async with loop:
            executor = CeleryExecutor(app, poll_interval_s=0.2, timeout_s=DEADLINE_S)  # type: ignore[arg-type]
            run = asyncio.ensure_future(resume_run(loop, owner, run_id, executor=executor))
            seen = await asyncio.to_thread(release_slow_leaf)
            return await run, seen

    try:
        result, seen = asyncio.run(resume())
    finally:
        side.stop()
        with parts["app"].connection_for_write() as conn:
            conn.default_channel.queue_delete(side_queue)
    assert seen == "RETRY"
    asyncio.run(_check_run(parts, result, items))
    replayed = {key for key, r in result.results.items() if r.replayed and key.startswith("leaf:")}
    assert replayed == journaled and len(journaled) >= 1
    calls = _calls(parts, items)
    finished_before = [item for item, times in calls.items() if len(times) >= 2 and times[1] < killed_at]
    rerun = [item for item in finished_before if any(t > killed_at for t in calls[item])]
    assert rerun == [] and len(finished_before) >= MIDWAY
    assert {item: len(times) for item, times in calls.items()} == {item: 2 for item in items}
    print(
        f"\ncelery workflow resume: items={ITEMS} driver killed with {len(journaled)} leaves journaled, "
        f"{len(finished_before)} finished; replayed={len(replayed)} rerun_after={len(rerun)} "
        "leaf 30 resubmitted while running: RETRY, then adopted "
        f"model_calls={sum(len(t) for t in calls.values())} wall={time.monotonic() - started:.1f}s"
    )
