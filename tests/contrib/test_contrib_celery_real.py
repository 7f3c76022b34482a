"""Real parts: RabbitMQ (broker), Redis (results), PostgreSQL (store) and two ``celery worker`` processes
started here. Every send is submitted twice and workers are SIGKILLed mid-tool-call: each session must
end with exactly its messages, in order, each answered once.

Skipped with the reason when RabbitMQ, Redis or the PostgreSQL test DSN is missing — except under
``CI``, where that fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.contrib.celery import TIMERS_SCAN_TASK, submit_send
from power_loop.loop import TimerRunner, format_timer_message
from power_loop.testing import ScriptedLLM

pytest.importorskip("celery")
from celery_parts import BACKEND, BROKER, Workers, drop_tables, require_parts
from celery_worker_app import killed_flag, make_app

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The defaults keep the test near a minute and a half; the full run is
# POWER_LOOP_CELERY_SESSIONS=200 POWER_LOOP_CELERY_KILLS=20 POWER_LOOP_CELERY_DEADLINE_S=3600.
SESSIONS = int(os.environ.get("POWER_LOOP_CELERY_SESSIONS", "20"))
SENDS = 5
KILLS = int(os.environ.get("POWER_LOOP_CELERY_KILLS", "3"))
DEADLINE_S = float(os.environ.get("POWER_LOOP_CELERY_DEADLINE_S", "300"))
# One slow send per kill, spread over sends 2..4 and over the sessions: (send, session).
SLOW = {(2 + j % 3, (j * 7 + 3) % SESSIONS) for j in range(KILLS)}
TIMER_SESSIONS = 30
SCANS = 12  # timers_scan submissions, all at once, raced by the two workers


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[dict[str, Any]]:
    dsn = require_parts()

    queue = f"pl-test-{secrets.token_hex(4)}"
    prefix = f"cel{secrets.token_hex(3)}_"
    markers = tmp_path / "markers"
    (markers / "killed").mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        "PL_TEST_BROKER": BROKER,
        "PL_TEST_BACKEND": BACKEND,
        "PL_TEST_QUEUE": queue,
        "PL_TEST_DSN": dsn,
        "PL_TEST_PREFIX": prefix,
        "PL_TEST_MARKERS": str(markers),
    }
    app = make_app(BROKER, BACKEND, queue)
    workers = Workers(env, tmp_path)
    try:
        yield {"app": app, "dsn": dsn, "prefix": prefix, "markers": markers, "workers": workers}
    finally:
        workers.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        asyncio.run(drop_tables(dsn, prefix))


def _wait_all(results: list[Any], deadline: float) -> list[dict[str, Any]]:
    out = []
    for result in results:
        out.append(result.get(timeout=max(1.0, deadline - time.monotonic()), propagate=True))
    return out


def _kill_mid_tool_call(parts: dict[str, Any], killed: list[str], deadline: float) -> None:
    """Wait for a worker to be inside a slow tool call (its marker file), SIGKILL it, start it again."""
    markers: Path = parts["markers"]
    while time.monotonic() < deadline:
        for marker in (m for m in markers.iterdir() if m.is_file()):
            text = marker.read_text() if marker.exists() else ""
            if "[slow]" not in text or text in killed:
                continue
            name = parts["workers"].kill_pid(int(marker.name.split("-")[0]))
            if name is not None:
                marker.unlink(missing_ok=True)  # a SIGKILLed tool never cleans up
                killed.append(text)
                killed_flag(markers, text).touch()  # the recovering worker's re-run returns at once
                parts["workers"].start(name)
                return
        time.sleep(0.2)
    raise AssertionError("no worker was seen inside a slow tool call")


async def _sessions(dsn: str, prefix: str) -> list[str]:
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix)
    try:
        return [await loop.new_session() for _ in range(SESSIONS)]
    finally:
        await loop.aclose()


def test_every_send_twice_and_workers_killed_mid_tool_call_store_each_message_once(
    parts: dict[str, Any],
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    sids = asyncio.run(_sessions(parts["dsn"], parts["prefix"]))
    for name in ("w1", "w2"):
        parts["workers"].start(name)
    slow = SLOW
    assert len(slow) == KILLS
    killed: list[str] = []
    submitted = 0
    for k in range(SENDS):
        results = []
        for i, sid in enumerate(sids):
            text = f"s{i} m{k}" + (" [slow]" if (k, i) in slow else "")
            for _ in range(2):  # every message submitted twice, as a re-delivering broker would
                results.append(submit_send(parts["app"], text, sid, message_id=f"{sid}:{k}"))
                submitted += 1
        for _ in range(sum(1 for key in slow if key[0] == k)):
            _kill_mid_tool_call(parts, killed, deadline)
        outcomes = _wait_all(results, deadline)
        print(f"round {k}: {time.monotonic() - deadline + DEADLINE_S:.1f}s")
        for first, second in zip(outcomes[::2], outcomes[1::2], strict=True):
            assert first["status"] == second["status"] == "completed", (first, second)
            assert first["final_text"] == second["final_text"]
    assert len(killed) == KILLS

    async def check() -> tuple[int, int]:
        loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=parts["dsn"], table_prefix=parts["prefix"])
        stored = answered = 0
        try:
            for i, sid in enumerate(sids):
                messages = await loop.get_messages(sid)
                users = [m["content"] for m in messages if m["role"] == "user"]
                expected = [f"s{i} m{k}" + (" [slow]" if (k, i) in slow else "") for k in range(SENDS)]
                assert users == expected, (sid, users)
                finals = [
                    m["content"] for m in messages if m["role"] == "assistant" and not m.get("tool_calls")
                ]
                assert finals == [f"answer: {u}" for u in expected], (sid, finals)
                assert await loop.get_pending(sid) is None
                stored += len(users)
                answered += len(finals)
        finally:
            await loop.aclose()
        return stored, answered

    stored, answered = asyncio.run(check())
    assert (submitted, stored, answered) == (2 * SESSIONS * SENDS, SESSIONS * SENDS, SESSIONS * SENDS)
    print(
        f"\ncelery real parts: submitted={submitted} stored={stored} duplicates=0 lost=0 killed={len(killed)}"
    )


async def _armed_sessions(dsn: str, prefix: str, notes: list[str]) -> dict[str, str]:
    """A session per note, each with one timer already due; session id -> the message expected."""
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix)
    expected: dict[str, str] = {}
    try:
        for note in notes:
            sid = await loop.new_session()
            timer = await loop.schedule_timer(sid, due_at_ms=time.time_ns() // 1_000_000 - 1000, note=note)
            expected[sid] = format_timer_message(timer)
    finally:
        await loop.aclose()
    return expected


async def _timer_state(
    dsn: str, prefix: str, sids: list[str]
) -> dict[str, tuple[list[str], list[str], bool]]:
    """Per session: its user messages, its final answers, and whether it still has a timer not fired."""
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix)
    out = {}
    try:
        for sid in sids:
            messages = await loop.get_messages(sid)
            users = [m["content"] for m in messages if m["role"] == "user"]
            finals = [m["content"] for m in messages if m["role"] == "assistant" and not m.get("tool_calls")]
            left = any(t.status != "fired" for t in await loop.list_timers(sid))
            out[sid] = (users, finals, left)
    finally:
        await loop.aclose()
    return out


def _assert_each_timer_once(parts: dict[str, Any], expected: dict[str, str]) -> None:
    state = asyncio.run(_timer_state(parts["dsn"], parts["prefix"], list(expected)))
    for sid, (users, finals, left) in state.items():
        assert users == [expected[sid]], (sid, users)
        assert finals == [f"answer: {expected[sid]}"], (sid, finals)
        assert not left, sid


def test_timers_scan_raced_by_two_workers_fires_every_timer_once(parts: dict[str, Any]) -> None:
    deadline = time.monotonic() + 120
    notes = [f"t{i}" for i in range(TIMER_SESSIONS)]
    expected = asyncio.run(_armed_sessions(parts["dsn"], parts["prefix"], notes))
    for name in ("w1", "w2"):
        parts["workers"].start(name)
    # Every scan submitted at once: both workers query the same due rows and race to claim them.
    results = [parts["app"].send_task(TIMERS_SCAN_TASK) for _ in range(SCANS)]
    claimed = sum(_wait_all(results, deadline))
    _assert_each_timer_once(parts, expected)
    assert claimed == TIMER_SESSIONS
    print(f"\ncelery timers: sessions={TIMER_SESSIONS} scans={SCANS} fired={claimed} duplicates=0 left=0")


async def _rearm_stale(dsn: str, prefix: str) -> int:
    """What a later scan does once ``stale_firing_s`` has passed (shortened here: nothing else fires)."""
    loop = StatefulAgentLoop(llm=ScriptedLLM(), dsn=dsn, table_prefix=prefix)
    try:
        return await TimerRunner(loop, stale_firing_s=1.0, heartbeat_interval_s=0.5).recover_stale()
    finally:
        await loop.aclose()


def test_timer_fired_again_after_its_worker_died_mid_tool_call_stores_its_message_once(
    parts: dict[str, Any],
) -> None:
    deadline = time.monotonic() + 120
    notes = ["t0", "t1 [slow]", "t2"]
    expected = asyncio.run(_armed_sessions(parts["dsn"], parts["prefix"], notes))
    for name in ("w1", "w2"):
        parts["workers"].start(name)
    results = [parts["app"].send_task(TIMERS_SCAN_TASK) for _ in range(4)]
    killed: list[str] = []
    _kill_mid_tool_call(parts, killed, deadline)  # the slow timer's worker dies with the timer firing
    _wait_all(results, deadline)  # the killed scan is delivered again: it finds nothing due
    # Re-armed (stale) only after the dead worker's session lease (3 s) expired, as with the default
    # stale_firing_s (120 s): the re-fire then drives the session itself rather than queueing behind it.
    time.sleep(5.0)
    # The dead worker's scan may have claimed more than the slow timer (a scan delivers its claims in
    # turn): every timer it left firing is re-armed and fired again, each still stored once.
    stale = asyncio.run(_rearm_stale(parts["dsn"], parts["prefix"]))
    assert 1 <= stale <= len(notes)
    assert _wait_all([parts["app"].send_task(TIMERS_SCAN_TASK)], deadline) == [stale]
    _assert_each_timer_once(parts, expected)
    print(f"\ncelery timers: killed={len(killed)} mid-delivery, re-fired {stale}, duplicates=0")
