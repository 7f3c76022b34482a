"""Workflow leaves in their own OS processes, behind a sandbox launcher, offline.

`SubprocessExecutor` runs every leaf with ``python -m power_loop.workflow.worker`` over its own SQLite file; a
`WorkerLauncher` wraps the command line (``env PL_SANDBOX=demo`` stands in for ``bwrap``); if it fails, nothing
runs unsandboxed. ``preload=True`` forks the leaves from one pre-started process (faster; no sandbox).
The workers' model: ``WorkerBootstrap(llm_factory="support.worker_model:worker_model")``.

Run it::

    python examples/25_workflow_subprocess_sandbox.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM
from power_loop.workflow import SubprocessExecutor, WorkerBootstrap, create_workflow

SPEC = json.loads("""
{"name": "isolated", "root": {"type": "foreach", "id": "checks", "as": "target", "items": ["api", "db"],
  "body": {"type": "agent", "id": "checker", "input": "Check {{target}}.",
           "spec": {"name": "checker", "system_prompt": "You check {{target}}."}}}}
""")


class EnvSandbox:
    """A stand-in sandbox: prefixes the worker command with ``env PL_SANDBOX=demo``."""

    def build(
        self, *, base_argv: list[str], base_env: dict[str, str] | None, **_: Any
    ) -> tuple[list[str], dict[str, str] | None]:
        argv = ["env", "PL_SANDBOX=demo", *base_argv]
        print("  launching:", " ".join(Path(a).name if a == base_argv[0] else a for a in argv))
        return argv, base_env


class MissingSandbox:
    def build(self, **_: Any) -> tuple[list[str], dict[str, str] | None]:
        raise FileNotFoundError("bwrap not found")


EXAMPLES = str(Path(__file__).resolve().parent)


async def main(tmp: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join([EXAMPLES, *sys.path])}  # the worker imports support.worker_model
    bootstrap = WorkerBootstrap(llm_factory="support.worker_model:worker_model")
    async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=":memory:") as loop:
        executor = SubprocessExecutor(
            bootstrap=bootstrap, runs_dir=tmp, env=env, launcher=EnvSandbox(), timeout_s=120
        )
        result = await create_workflow(SPEC, parent_loop=loop, executor=executor).run()
        for key in ("checker:0", "checker:1"):
            print(f"{key}: {result.results[key].status} — {result.results[key].text}")
        copied = await (await loop.ensure_store()).load_all_messages(
            result.results["checker:0"].session_id or ""
        )
        print("leaf session copied into the parent store:", len(copied), "messages")
        assert result.status == "completed" and copied

        broken = SubprocessExecutor(bootstrap=bootstrap, runs_dir=tmp, env=env, launcher=MissingSandbox())
        failed = await create_workflow(SPEC, parent_loop=loop, executor=broken).run()
        print("with a broken sandbox:", failed.status, "—", failed.results["checker:0"].error)
        async with SubprocessExecutor(bootstrap=bootstrap, runs_dir=tmp, env=env, preload=True) as forked:
            again = await create_workflow(SPEC, parent_loop=loop, executor=forked).run()
        print("preloaded (forked from one zygote):", again.status, "—", again.results["checker:1"].text)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(main(Path(tmp)))
