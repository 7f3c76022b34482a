"""Past one machine: web processes submit sends, a pool of Celery workers runs them.

Needs RabbitMQ (127.0.0.1:5672, guest/guest) and Redis (127.0.0.1:6379). Two commands, from the checkout:

    celery --workdir examples -A celery_app worker --pool=solo -l WARNING   # a worker; start several
    python examples/celery_app.py                    # submits every message twice, prints the histories

All workers share one store, POWER_LOOP_DSN (default: a SQLite file in the temp folder; across hosts
PostgreSQL or MySQL); POWER_LOOP_BROKER/_RESULTS/_QUEUE override broker, results, queue (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from celery import Celery

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.contrib.celery import install_tasks, submit_send
from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn

DSN = os.environ.get("POWER_LOOP_DSN") or f"sqlite:///{tempfile.gettempdir()}/power_loop_celery_demo.db"
app = Celery(
    "agents",
    broker=os.environ.get("POWER_LOOP_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=os.environ.get("POWER_LOOP_RESULTS", "redis://127.0.0.1:6379/0"),
)
app.conf.update(task_default_queue=os.environ.get("POWER_LOOP_QUEUE", "power_loop"))
tools = ToolRegistry()  # the same in every worker


@tools.tool(effect="idempotent")
def order_status(order_id: str) -> str:
    """Where an order is."""
    return f"{order_id} shipped (answered by worker pid {os.getpid()})"


def model(request: LLMRequest) -> ScriptedTurn:
    """An instant offline model: look the order up, then answer with what the tool said."""
    last = request.messages[-1]
    if last.get("role") == "tool":
        return ScriptedLLM.text(f"Order status: {last.get('content')}")
    return ScriptedLLM.tool_call("order_status", {"order_id": str(last.get("content")).split()[-1]})


def make_loop() -> StatefulAgentLoop:
    """What each worker process runs its tasks on; the lease keeps two workers off one session."""
    return StatefulAgentLoop(llm=ScriptedLLM(responder=model), dsn=DSN, tool_registry=tools, lease_ttl_s=30)


install_tasks(app, make_loop)


async def store_call(work: str, session_ids: list[str]) -> list[Any]:
    async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=DSN) as loop:
        if work == "new":
            return [await loop.new_session() for _ in range(2)]
        return [await loop.get_messages(sid) for sid in session_ids]


def main() -> None:
    sids: list[str] = asyncio.run(store_call("new", []))
    for k in range(2):  # message k of every session, each submitted twice (a retrying web client)
        results = [submit_send(app, f"Where is order A-{n}{k}", sid, message_id=f"{sid}:{k}") for n, sid in enumerate(sids) for _ in range(2)]  # fmt: skip
        statuses = sorted({r.get(timeout=120)["status"] for r in results})
        print(f"round {k}: {len(results)} tasks submitted; statuses {statuses}")
    for sid, messages in zip(sids, asyncio.run(store_call("history", sids)), strict=True):
        print(f"session {sid}: {sum(m['role'] == 'user' for m in messages)} user messages stored")
        for m in messages:
            calls = [f"{c['function']['name']} {c['function']['arguments']}" for c in m.get("tool_calls", [])]
            print(f"  {m['role']:<9}", m.get("content") or ", ".join(calls))


if __name__ == "__main__":
    main()
