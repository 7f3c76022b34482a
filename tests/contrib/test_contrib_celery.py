"""`power_loop.contrib.celery` without a broker: task registration and options, the tasks run eagerly
(a repeated task stores its message once), the lazy import and its install hint."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from power_loop import FollowUpQueued, StatefulAgentLoop, StatefulResult
from power_loop.contrib import celery as pl_celery
from power_loop.errors import MissingDependencyError
from power_loop.testing import ScriptedLLM

celery = pytest.importorskip("celery")


def _app() -> Any:
    app = celery.Celery("t", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    app.conf.task_store_eager_result = True
    return app


def test_install_tasks_registers_late_acking_tasks_under_their_names(tmp_path: Path) -> None:
    app = _app()
    tasks = pl_celery.install_tasks(
        app, lambda: StatefulAgentLoop(llm=ScriptedLLM(), dsn=str(tmp_path / "x.db"))
    )
    names = (pl_celery.SEND_TASK, pl_celery.DELIVER_TASK, pl_celery.RESUME_TASK, pl_celery.TIMERS_SCAN_TASK)
    assert names == ("power_loop.send", "power_loop.deliver", "power_loop.resume", "power_loop.timers_scan")
    for name in names:
        task = app.tasks[name]
        assert (task.acks_late, task.reject_on_worker_lost) == (True, True)
    assert tasks.send.name == pl_celery.SEND_TASK


def test_a_repeated_send_task_stores_its_message_once(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")

    async def new_session() -> str:
        async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=db) as loop:
            return await loop.new_session()

    sid = asyncio.run(new_session())
    app = _app()
    tasks = pl_celery.install_tasks(
        app, lambda: StatefulAgentLoop(llm=ScriptedLLM(default="hello back"), dsn=db)
    )
    try:
        first = tasks.send.apply(args=("hello", sid, "m-1")).get()
        again = tasks.send.apply(args=("hello", sid, "m-1")).get()
        assert (
            first
            == again
            == {"session_id": sid, "status": "completed", "final_text": "hello back", "rounds": 1}
        )
        queued = tasks.deliver.apply(args=("later", sid, "d-1", True)).get()
        assert (queued["status"], queued["accepted_ids"]) == ("queued", ["d-1"])
        assert tasks.deliver.apply(args=("later", sid, "d-1", True)).get()["duplicates"] == 1
        assert tasks.resume.apply(args=(sid,)).get()["status"] == "nothing_to_resume"
        assert tasks.timers_scan.apply().get() == 0
        messages = tasks.runtime.run(lambda loop: loop.get_messages(sid))
        assert [m["content"] for m in messages if m["role"] == "user"] == ["hello"]
    finally:
        tasks.runtime.close()


def test_submit_send_draws_a_message_id(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    class App:
        def send_task(self, name: str, args: tuple[Any, ...], **options: Any) -> str:
            sent.append((name, args, options))
            return "result"

    assert pl_celery.submit_send(App(), "hi", "sess_1", queue="q") == "result"  # type: ignore[arg-type]
    pl_celery.submit_send(App(), "hi", "sess_1", message_id="mine")  # type: ignore[arg-type]
    pl_celery.submit_deliver(App(), "x", "sess_1")  # type: ignore[arg-type]
    (name, args, options), (_, mine, _), (deliver, dargs, _) = sent
    assert (name, args[:2], options) == ("power_loop.send", ("hi", "sess_1"), {"queue": "q"})
    assert len(args[2]) == 32 and mine[2] == "mine"
    assert deliver == "power_loop.deliver" and len(dargs[2]) == 32 and dargs[3] is False


def test_outcome_dicts() -> None:
    done = StatefulResult(session_id="s", status="completed", final_text="t", rounds=2)
    assert pl_celery.outcome_dict(done) == {
        "session_id": "s",
        "status": "completed",
        "final_text": "t",
        "rounds": 2,
    }
    queued = FollowUpQueued(session_id="s", queue_depth=1, accepted=0, duplicates=1)
    assert pl_celery.outcome_dict(queued)["duplicates"] == 1


def test_missing_celery_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)
    with pytest.raises(MissingDependencyError, match=r"pip install celery\[redis\]"):
        pl_celery.install_tasks(object(), lambda: None)  # type: ignore[arg-type,return-value]


def test_importing_the_module_does_not_import_celery() -> None:
    code = "import sys, power_loop.contrib.celery; print('celery' in sys.modules, 'kombu' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
