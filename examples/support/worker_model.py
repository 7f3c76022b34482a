"""The scripted model of ``examples/25_workflow_subprocess_sandbox.py``, built in each worker process.

``WorkerBootstrap(llm_factory="support.worker_model:worker_model")`` names it by import path; the
answer says which process and which sandbox ran the leaf.
"""

from __future__ import annotations

import os

from power_loop import LLMRequest
from power_loop.testing import ScriptedLLM, ScriptedTurn

__all__ = ["worker_model"]


def worker_model() -> ScriptedLLM:
    def answer(request: LLMRequest) -> ScriptedTurn:
        sandbox = os.environ.get("PL_SANDBOX", "none")
        return ScriptedLLM.text(f"{request.system_prompt} -> ok (pid {os.getpid()}, sandbox {sandbox})")

    return ScriptedLLM(responder=answer)
