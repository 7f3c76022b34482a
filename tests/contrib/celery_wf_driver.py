"""A workflow driver process for ``test_contrib_celery_workflow_real.py``: runs the foreach workflow with
a `CeleryExecutor` under the owner session given on the command line, after printing its run id; the
test SIGKILLs it mid-run and resumes the run from another process.

Usage: ``python celery_wf_driver.py <owner session id> <items JSON>`` with the workers' ``PL_TEST_*``
environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from celery_worker_app import foreach_spec, make_app

from power_loop import StatefulAgentLoop
from power_loop.contrib.celery import CeleryExecutor
from power_loop.testing import ScriptedLLM
from power_loop.workflow import create_workflow


async def main(owner: str, items: list[str]) -> None:
    app = make_app(os.environ["PL_TEST_BROKER"], os.environ["PL_TEST_BACKEND"], os.environ["PL_TEST_QUEUE"])
    loop = StatefulAgentLoop(
        llm=ScriptedLLM(), dsn=os.environ["PL_TEST_DSN"], table_prefix=os.environ["PL_TEST_PREFIX"]
    )
    async with loop:
        workflow = create_workflow(
            foreach_spec(items, max_concurrency=8),
            parent_loop=loop,
            executor=CeleryExecutor(app, poll_interval_s=0.2),
            parent_session_id=owner,
        )
        print(workflow.run_id, flush=True)  # the test reads it before killing this process
        result = await workflow.run()
        print(result.status, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
