"""Workflow leaves in their own OS processes, behind a sandbox launcher, offline.

`SubprocessExecutor` runs every leaf with ``python -m power_loop.workflow.worker`` over its own SQLite
file; a `WorkerLauncher` wraps the command line — here ``env PL_SANDBOX=demo`` stands in for ``bwrap``
or ``firejail``. A launcher that fails fails its leaf: nothing ever runs unsandboxed. The worker's
model comes from ``WorkerBootstrap(llm_factory="module:function")``: this file's ``worker_model``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from power_loop import StatefulAgentLoop
from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn
from power_loop.workflow import SubprocessExecutor, WorkerBootstrap, create_workflow

SPEC = {
    "name": "isolated",
    "root": {
        "type": "foreach",
        "id": "checks",
        "as": "target",
        "items": ["api", "db"],
        "body": {
            "type": "agent",
            "id": "checker",
            "spec": {"name": "checker", "system_prompt": "You check {{target}}."},
            "input": "Check {{target}}.",
        },
    },
}


def worker_model() -> ScriptedLLM:
    """Built inside each worker process (named by import path in the bootstrap)."""

    def answer(request: LLMRequest) -> ScriptedTurn:
        sandbox = os.environ.get("PL_SANDBOX", "none")
        return ScriptedLLM.text(f"{request.system_prompt} -> ok (pid {os.getpid()}, sandbox {sandbox})")

    return ScriptedLLM(responder=answer)


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


HERE = str(Path(__file__).resolve().parent)


async def main() -> None:
    here = HERE
    env = {"PYTHONPATH": os.pathsep.join([here, *sys.path])}
    bootstrap = WorkerBootstrap(llm_factory=f"{Path(__file__).stem}:worker_model")
    with tempfile.TemporaryDirectory() as tmp:
        async with StatefulAgentLoop(llm=ScriptedLLM(), dsn=str(Path(tmp) / "parent.db")) as loop:
            executor = SubprocessExecutor(
                bootstrap=bootstrap,
                runs_dir=Path(tmp) / "runs",
                env=env,
                launcher=EnvSandbox(),
                timeout_s=120,
            )
            result = await create_workflow(SPEC, parent_loop=loop, executor=executor).run()
            for key in ("checker:0", "checker:1"):
                print(f"{key}: {result.results[key].status} — {result.results[key].text}")
            store = await loop.ensure_store()
            sid = result.results["checker:0"].session_id or ""
            print(
                "leaf session copied into the parent store:",
                len(await store.load_all_messages(sid)),
                "messages",
            )

            broken = SubprocessExecutor(
                bootstrap=bootstrap, runs_dir=Path(tmp) / "runs", env=env, launcher=MissingSandbox()
            )
            failed = await create_workflow(SPEC, parent_loop=loop, executor=broken).run()
            print("with a broken sandbox:", failed.status, "—", failed.results["checker:0"].error)


if __name__ == "__main__":
    asyncio.run(main())
