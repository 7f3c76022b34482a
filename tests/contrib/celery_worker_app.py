"""The Celery app of the real-parts tests (``test_contrib_celery_real.py``), imported by the tests and by
the ``celery worker`` processes they start (``celery -A celery_worker_app worker``, this directory on
``PYTHONPATH``). Configuration comes from the environment the test gives the workers.

The worker's model is scripted and instant: to a user message it answers with one ``work`` tool call,
to the tool's result with ``answer: <text>``. The tool writes a marker file named after the worker's
pid while it runs (so the test can SIGKILL a worker *mid-tool-call*); for a text marked ``[slow]`` it
blocks until the test has killed a worker running it. With ``PL_TEST_CALLS`` set the model logs every
call it answers, per user text (the workflow tests count the calls of each leaf).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from celery import Celery

from power_loop import StatefulAgentLoop, ToolDefinition, ToolRegistry
from power_loop.contrib.celery import install_tasks
from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn

SLOW_LIMIT_S = 120.0


def make_app(broker: str, backend: str, queue: str) -> Celery:
    app = Celery("power_loop_test", broker=broker, backend=backend)
    app.conf.update(
        task_default_queue=queue,
        # Not 1: a task retried for a busy session waits in the worker holding a prefetch slot, and with
        # one slot the worker takes nothing new until Celery's next prefetch update (~10 s stalls).
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        task_serializer="json",
        result_serializer="json",
        worker_hijack_root_logger=False,
    )
    return app


def calls_file(calls: Path, text: str) -> Path:
    """Where the model logs its calls for the conversation whose last user message is ``text``."""
    return calls / hashlib.sha1(text.encode()).hexdigest()


def _record_call(request: LLMRequest) -> None:
    """With ``PL_TEST_CALLS`` set, one line per model call (``<time_ns> <pid>``), per user text."""
    calls = os.environ.get("PL_TEST_CALLS")
    users = [m for m in request.messages if m.get("role") == "user"]
    if calls and users:
        with calls_file(Path(calls), str(users[-1].get("content"))).open("a") as log:
            log.write(f"{time.time_ns()} {os.getpid()}\n")


def _respond(request: LLMRequest) -> ScriptedTurn:
    _record_call(request)
    last = request.messages[-1]
    if last.get("role") == "tool":
        users = [m for m in request.messages if m.get("role") == "user"]
        return ScriptedLLM.text(f"answer: {users[-1].get('content')}")
    text = str(last.get("content") or "")
    return ScriptedLLM.tool_call("work", {"x": text}, id=f"call_{uuid.uuid4().hex[:12]}")


def killed_flag(markers: Path, text: str) -> Path:
    """Written by the test once it SIGKILLed the worker running the slow call for ``text``."""
    return markers / "killed" / hashlib.sha1(text.encode()).hexdigest()


def _work(x: str) -> str:
    markers = Path(os.environ["PL_TEST_MARKERS"])
    marker = markers / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    marker.write_text(x)
    try:
        # A "[slow]" call blocks (the worker is mid-tool-call) until the test has killed a worker
        # running it; its re-execution by the recovering worker then returns at once.
        waited = 0.0
        while "[slow]" in x and not killed_flag(markers, x).exists() and waited < SLOW_LIMIT_S:
            time.sleep(0.2)
            waited += 0.2
        return f"worked on {x}"
    finally:
        marker.unlink(missing_ok=True)


def make_loop() -> StatefulAgentLoop:
    registry = ToolRegistry()
    registry.register(
        ToolDefinition(
            name="work",
            description="does the work",
            input_schema={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
        ),
        _work,
    )
    return StatefulAgentLoop(
        llm=ScriptedLLM(responder=_respond),
        dsn=os.environ["PL_TEST_DSN"],
        table_prefix=os.environ["PL_TEST_PREFIX"],
        tool_registry=registry,
        lease_ttl_s=float(os.environ.get("PL_TEST_LEASE_TTL", "3")),
    )


def _from_env() -> Celery | None:
    if "PL_TEST_BROKER" not in os.environ:
        return None
    app = make_app(os.environ["PL_TEST_BROKER"], os.environ["PL_TEST_BACKEND"], os.environ["PL_TEST_QUEUE"])
    ttl = float(os.environ.get("PL_TEST_LEASE_TTL", "3"))
    install_tasks(app, make_loop, busy_retry_s=1.0, leaf_lease_ttl_s=ttl)
    return app


app: Any = _from_env()


def foreach_spec(items: list[str], *, max_concurrency: int) -> dict[str, Any]:
    """The workflow of the Celery workflow tests: one leaf (the ``work`` tool, then an answer) per item."""
    leaf = {
        "type": "agent",
        "id": "leaf",
        "input": "{{item}}",
        "spec": {"name": "leaf", "system_prompt": "Work."},
    }
    body = {"type": "foreach", "id": "each", "as": "item", "items": items, "max_concurrency": max_concurrency}
    return {"name": "celery-foreach", "root": {**body, "body": leaf}}
