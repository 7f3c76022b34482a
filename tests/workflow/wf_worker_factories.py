"""Factories the subprocess-leaf tests name in `WorkerBootstrap` (imported inside worker processes)."""

from __future__ import annotations

import asyncio
import os
import subprocess

from wf_helpers import research_reply

from power_loop.llm import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn


def research_model() -> ScriptedLLM:
    return ScriptedLLM(responder=research_reply)


def hanging_model() -> ScriptedLLM:
    """Starts a grandchild that ignores SIGTERM, records both pids, then never answers."""

    async def hang(request: LLMRequest) -> ScriptedTurn:
        _start_stubborn_grandchild(os.environ["WF_PIDS_FILE"])
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return ScriptedLLM(responder=hang)


def _start_stubborn_grandchild(pids_file: str) -> None:
    child = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 600"])
    # Written whole, then renamed: the tests poll for the file and read it at once.
    with open(pids_file + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.replace(pids_file + ".tmp", pids_file)


def crashing_model() -> ScriptedLLM:
    """The worker process dies mid-leaf, leaving no result behind."""

    def crash(request: LLMRequest) -> ScriptedTurn:
        os._exit(3)

    return ScriptedLLM(responder=crash)


def subprocess_model() -> ScriptedLLM:
    """Answers with the exit status of a subprocess it waits for (asyncio needs its own SIGCHLD)."""

    async def run_child(request: LLMRequest) -> ScriptedTurn:
        proc = await asyncio.create_subprocess_exec("sh", "-c", "exit 7")
        return ScriptedLLM.text(f"rc={await proc.wait()}")

    return ScriptedLLM(responder=run_child)
