"""The ``workflow.step_start`` / ``workflow.step_end`` hooks, fired through the parent loop's hooks.

A ctx is built only when a handler is registered for its point, so a run without workflow hooks pays
nothing (the ctx classes load lazily too).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import hooks as H
from ..agents import AgentSpec
from ..loop import StatefulAgentLoop
from ._errors import WorkflowRunError
from ._results import AgentResult

__all__ = ["StepStart", "step_end", "step_start"]


@dataclass(frozen=True)
class StepStart:
    """What the ``workflow.step_start`` handlers decided: skip the step, or run it on ``user_input``."""

    skip: bool
    user_input: str
    reason: str = ""


async def step_start(
    loop: StatefulAgentLoop,
    driver_sid: str,
    run_id: str,
    step: str,
    node_id: str,
    spec: AgentSpec,
    user_input: str,
) -> StepStart:
    """Run the ``workflow.step_start`` handlers for leaf ``step`` (a journal key) about to start."""
    if not loop.hooks.has(H.HookPoint.WORKFLOW_STEP_START):
        return StepStart(False, user_input)
    ctx = H.WorkflowStepStartCtx(
        session_id=driver_sid, run_id=run_id, step=step, node_id=node_id, spec=spec, user_input=user_input
    )
    await loop.hooks.run(H.HookPoint.WORKFLOW_STEP_START, ctx)
    return StepStart(ctx.directive == H.HookDirective.SKIP, str(ctx.user_input), ctx.reason)


async def step_end(
    loop: StatefulAgentLoop, driver_sid: str, run_id: str, step: str, result: AgentResult
) -> AgentResult:
    """Run the ``workflow.step_end`` handlers; returns the (possibly replaced) result."""
    if not loop.hooks.has(H.HookPoint.WORKFLOW_STEP_END):
        return result
    ctx = H.WorkflowStepEndCtx(
        session_id=driver_sid, run_id=run_id, step=step, node_id=result.node_id, result=result
    )
    await loop.hooks.run(H.HookPoint.WORKFLOW_STEP_END, ctx)
    if not isinstance(ctx.result, AgentResult):
        raise WorkflowRunError(
            f"a workflow.step_end hook must leave an AgentResult in ctx.result, got {ctx.result!r}"
        )
    return ctx.result
