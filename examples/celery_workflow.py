"""A workflow whose leaves run on the Celery worker pool of celery_app.py (CeleryExecutor).

Needs RabbitMQ and Redis, like celery_app.py, and the same worker. Two commands, from the checkout:

    celery --workdir examples -A celery_app worker --pool=solo -l WARNING   # a worker; start several
    python examples/celery_workflow.py          # drives the workflow here; each leaf is a worker's task

This process walks the spec and journals each leaf; the workers run the leaves (``run_leaf_once``:
exactly once per leaf, whatever the broker redelivers) on the store they all share (POWER_LOOP_DSN).
"""

from __future__ import annotations

import asyncio

from celery_app import DSN, app  # the worker's app: install_tasks registered power_loop.workflow_leaf

from power_loop import StatefulAgentLoop
from power_loop.contrib.celery import CeleryExecutor
from power_loop.testing import ScriptedLLM
from power_loop.workflow import create_workflow

SPEC = {
    "name": "orders",
    "root": {
        "type": "foreach", "id": "check", "as": "order", "items": ["B-1", "B-2", "B-3"], "max_concurrency": 3,
        "body": {"type": "agent", "id": "clerk", "input": "Where is order {{order}}",
                 "spec": {"name": "clerk", "system_prompt": "You track orders."}},
    },
}  # fmt: skip


async def main() -> None:
    # The driver's own model is never called: every leaf runs on a worker, with the worker's model.
    async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=DSN) as loop:
        parent = await loop.new_session()
        executor = CeleryExecutor(app, poll_interval_s=0.2, timeout_s=120)
        result = await create_workflow(
            SPEC, parent_loop=loop, executor=executor, parent_session_id=parent
        ).run()
        print(result.summary().splitlines()[0])
        for key in sorted(k for k in result.results if k.startswith("clerk:")):
            print(f"  {key}: {result.results[key].text}")
        assert result.status == "completed"


if __name__ == "__main__":
    asyncio.run(main())
