"""`CeleryExecutor` and the ``power_loop.workflow_leaf`` task without a broker: a workflow run end to end
on Celery's in-memory transport and a worker thread, the task's JSON round trip, and the executor's
failure, stop and timeout reports against a stand-in app."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.agents import AgentSpec
from power_loop.contrib import celery as pl_celery
from power_loop.errors import ConfigError
from power_loop.llm import CancellationToken, LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import create_workflow, leaf_session_id

celery = pytest.importorskip("celery")

ITEMS = [f"item {i}" for i in range(6)]
SPEC = {
    "name": "fan",
    "root": {
        "type": "foreach",
        "id": "each",
        "as": "x",
        "items": ITEMS,
        "max_concurrency": 6,
        "body": {
            "type": "agent",
            "id": "leaf",
            "input": "{{x}}",
            "spec": {"name": "a", "system_prompt": "Echo."},
        },
    },
}
META = {"workflow_run_id": "r", "workflow_node_id": "leaf", "idempotency_key": "r:leaf:0", "attempt": 1}


class Calls:
    """An instant model answering ``answer: <input>``; it counts calls per input."""

    def __init__(self) -> None:
        self.by_input: dict[str, int] = {}

    def __call__(self, request: LLMRequest) -> ScriptedTurn:
        text = str(request.messages[-1].get("content"))
        self.by_input[text] = self.by_input.get(text, 0) + 1
        return ScriptedLLM.text(f"answer: {text}")


@pytest.fixture
def memory_pool(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Celery app on the in-memory broker and result cache, with one worker thread running the tasks."""
    from celery.contrib.testing.worker import start_worker

    db = str(tmp_path / "wf.db")
    calls = Calls()
    app = celery.Celery("wf", broker="memory://", backend="cache+memory://")
    tasks = pl_celery.install_tasks(
        app, lambda: StatefulAgentLoop(llm=ScriptedLLM(responder=calls), dsn=db), leaf_lease_ttl_s=5
    )
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield {"app": app, "db": db, "calls": calls, "tasks": tasks}
    finally:
        tasks.runtime.close()


def test_a_workflow_runs_its_leaves_as_tasks_and_a_repeated_leaf_task_is_adopted(
    memory_pool: dict[str, Any],
) -> None:
    app = memory_pool["app"]

    async def run() -> tuple[Any, list[Any]]:
        async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=memory_pool["db"]) as loop:
            executor = pl_celery.CeleryExecutor(app, poll_interval_s=0.05, timeout_s=120)
            result = await create_workflow(SPEC, parent_loop=loop, executor=executor).run()
            store = await loop.ensure_store()
            sessions = [await store.get_session(result.results[f"leaf:{i}"].session_id) for i in range(6)]
            return result, sessions

    result, sessions = asyncio.run(run())
    assert result.status == "completed", result.errors
    assert [result.results[f"leaf:{i}"].text for i in range(6)] == [f"answer: {x}" for x in ITEMS]
    for i, session in enumerate(sessions):
        assert session is not None and session.session_id == leaf_session_id(f"{result.run_id}:leaf:{i}")
        assert session.metadata["idempotency_key"] == f"{result.run_id}:leaf:{i}"
    assert len({s.parent_session_id for s in sessions if s is not None}) == 1  # the run's driver
    assert memory_pool["calls"].by_input == {x: 1 for x in ITEMS}
    # The broker delivering leaf 0's task again (or a resumed driver resubmitting it): adopted.
    first = sessions[0]
    assert first is not None
    spec = AgentSpec(name="a", system_prompt="Echo.")
    args = pl_celery.leaf_task_args(spec, ITEMS[0], str(first.parent_session_id), first.session_id, META)
    again = app.send_task(pl_celery.WORKFLOW_LEAF_TASK, args=args).get(timeout=60)
    assert (again["status"], again["final_text"]) == ("completed", "answer: item 0")
    assert memory_pool["calls"].by_input == {x: 1 for x in ITEMS}


class FakeResult:
    """An `AsyncResult` stand-in: ``ready()`` turns true after ``polls`` polls (never when None)."""

    def __init__(self, task_id: str, state: str, result: Any, polls: int | None = 1) -> None:
        self.id, self.state, self.result, self.polls = task_id, state, result, polls

    def ready(self) -> bool:
        if self.polls is None:
            return False
        self.polls -= 1
        return self.polls <= 0

    def successful(self) -> bool:
        return self.state == "SUCCESS"


class FakeApp:
    """Records what is submitted and revoked; each submission returns the next prepared result."""

    def __init__(self, *results: FakeResult | Exception) -> None:
        self.results = list(results)
        self.sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.revoked: list[str] = []
        self.submitted = threading.Event()
        self.control = self

    def send_task(self, name: str, args: tuple[Any, ...], **options: Any) -> FakeResult:
        self.sent.append((name, args, options))
        self.submitted.set()
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    def revoke(self, task_id: str) -> None:
        self.revoked.append(task_id)


def _run_leaf(app: FakeApp, stop: Any = None, **options: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        executor = pl_celery.CeleryExecutor(app, poll_interval_s=0.01, **options)  # type: ignore[arg-type]
        return await executor.run_agent(
            AgentSpec(name="a", system_prompt="p"),
            "in",
            parent_loop=None,  # type: ignore[arg-type]
            driver_sid="sess_d",
            session_id="wf_1",
            metadata=META,
            stop_event=stop,
        )

    return asyncio.run(go())


def test_a_finished_task_s_outcome_is_returned_and_its_arguments_are_json(tmp_path: Path) -> None:
    done = {"session_id": "wf_1", "status": "completed", "final_text": "ok", "usage": {"total_tokens": 3}}
    app = FakeApp(FakeResult("t1", "SUCCESS", done, polls=3))
    out = _run_leaf(app, queue="leaves")
    assert out == {**done, "output": None, "rounds": 0}
    ((name, args, options),) = app.sent
    assert (name, options) == ("power_loop.workflow_leaf", {"queue": "leaves"})
    assert json.loads(json.dumps(args)) == list(args)
    assert AgentSpec.from_dict(args[0]) == AgentSpec(name="a", system_prompt="p")
    assert args[1:] == ("in", "sess_d", "wf_1", META)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            FakeResult("t1", "FAILURE", RuntimeError("store down")),
            "leaf task FAILURE: RuntimeError: store down",
        ),
        (FakeResult("t1", "REVOKED", None), "leaf task REVOKED: None"),
        (ConnectionError("no broker"), "could not submit the leaf task: ConnectionError: no broker"),
    ],
)
def test_a_failed_revoked_or_unsubmittable_leaf_is_reported_failed(
    result: FakeResult | Exception, expected: str
) -> None:
    out = _run_leaf(FakeApp(result))
    assert (out["status"], out["error"], out["session_id"]) == ("failed", expected, "wf_1")


def test_a_stopped_run_revokes_the_leaf_task_and_stops_waiting() -> None:
    app = FakeApp(FakeResult("t1", "PENDING", None, polls=None))
    stop = CancellationToken()

    async def go() -> dict[str, Any]:
        executor = pl_celery.CeleryExecutor(app, poll_interval_s=0.01)  # type: ignore[arg-type]
        leaf = asyncio.ensure_future(
            executor.run_agent(
                AgentSpec(name="a", system_prompt="p"),
                "in",
                parent_loop=None,  # type: ignore[arg-type]
                driver_sid="sess_d",
                session_id="wf_1",
                metadata=META,
                stop_event=stop,
            )
        )
        await asyncio.to_thread(app.submitted.wait, 60)
        stop.cancel("user")
        return await leaf

    out = asyncio.run(go())
    assert (out["status"], app.revoked) == ("cancelled", ["t1"])
    already = _run_leaf(FakeApp(), stop=lambda: True)
    assert already["status"] == "cancelled"  # stopped before submitting: nothing sent


def test_a_leaf_waited_for_past_timeout_s_is_revoked_and_failed() -> None:
    app = FakeApp(FakeResult("t1", "PENDING", None, polls=None))
    out = _run_leaf(app, timeout_s=0.2)
    assert (out["status"], app.revoked) == ("failed", ["t1"])
    assert "timed out" in out["error"]


@pytest.mark.parametrize("options", [{"poll_interval_s": 0}, {"timeout_s": -1}])
def test_bad_executor_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        pl_celery.CeleryExecutor(FakeApp(), **options)  # type: ignore[arg-type]


def test_the_leaf_task_is_registered_late_acking_and_its_outcome_is_json(tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")

    async def driver() -> str:
        async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=db) as loop:
            return await loop.new_session()

    sid = asyncio.run(driver())
    app = celery.Celery("t", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    tasks = pl_celery.install_tasks(app, lambda: StatefulAgentLoop(llm=ScriptedLLM(default="done"), dsn=db))
    try:
        task = app.tasks[pl_celery.WORKFLOW_LEAF_TASK]
        assert (task.acks_late, task.reject_on_worker_lost, task.max_retries) == (True, True, None)
        assert tasks.workflow_leaf.name == task.name
        args = json.loads(
            json.dumps(
                pl_celery.leaf_task_args(AgentSpec(name="a", system_prompt="p"), "hi", sid, "wf_x", META)
            )
        )
        out = tasks.workflow_leaf.apply(args=args).get()
        assert json.loads(json.dumps(out)) == out
        assert (out["session_id"], out["status"], out["final_text"]) == ("wf_x", "completed", "done")
    finally:
        tasks.runtime.close()


class KeyValueBackend:
    """A Redis-like result backend: ``mget`` answers for every key at once (None = no state stored)."""

    def __init__(self, stored: set[str]) -> None:
        self.stored, self.mgets = stored, 0

    def get_key_for_task(self, task_id: str) -> bytes:
        return f"meta-{task_id}".encode()

    def mget(self, keys: list[bytes]) -> list[bytes | None]:
        self.mgets += 1
        return [key if key.decode().removeprefix("meta-") in self.stored else None for key in keys]


def test_polling_asks_a_key_value_backend_once_and_reads_only_tasks_with_a_state() -> None:
    backend = KeyValueBackend({"t1", "t2"})
    results = [FakeResult(f"t{i}", "PENDING", None, polls=1) for i in range(4)]
    results[2].polls = None  # t2 has a state (say RETRY) but has not ended
    for result in results:
        result.backend = backend  # type: ignore[attr-defined]
    assert pl_celery._ready_ids(results) == ["t1"]  # type: ignore[arg-type]
    assert backend.mgets == 1
    assert [r.polls for r in results] == [1, 0, None, 1]  # t0 and t3 (no state stored) were not read
    plain = [FakeResult("a", "SUCCESS", {}, polls=1), FakeResult("b", "PENDING", None, polls=None)]
    for result in plain:
        result.backend = object()  # type: ignore[attr-defined]
    assert pl_celery._ready_ids(plain) == ["a"]  # type: ignore[arg-type]
