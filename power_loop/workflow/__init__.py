"""Workflows: a strict JSON language for multi-agent runs, journaled so a crashed run resumes.

A `WorkflowSpec` is a tree of nodes — ``agent`` leaves (an `AgentSpec` run on a templated input) and
the containers ``sequence``, ``parallel``, ``foreach``, ``branch`` and ``loop``. `create_workflow`
validates a spec (every problem at once, with its JSON path, in `WorkflowSpecError.problems`);
``await workflow.run()`` executes it and commits each leaf's outcome to the store's journal as it
finishes; `resume_run` finishes an interrupted run, replaying what was done. See docs/workflows.md.
"""

from __future__ import annotations

from ._api import (
    Workflow,
    WorkflowRunHandle,
    cancel_workflow,
    create_workflow,
    get_workflow,
    list_workflows,
    resume_detached,
    resume_run,
)
from ._engine import in_workflow
from ._errors import SpecProblem, WorkflowRunError, WorkflowSpecError
from ._leaf import Executor, InProcessExecutor, leaf_session_id
from ._nodes import (
    AgentNode,
    BranchNode,
    ForeachNode,
    LoopNode,
    LoopUntil,
    ParallelNode,
    RetryPolicy,
    SequenceNode,
    WorkflowBudget,
    WorkflowNode,
)
from ._results import AgentResult, SharedBudget, WorkflowResult
from ._spec import WorkflowSpec, validate_spec
from ._subprocess import DirectWorkerLauncher, SubprocessExecutor, WorkerLauncher, cleanup_run, reap_runs
from ._tools import WORKFLOW_TOOL_NAMES, register_workflow_tools
from ._worker_job import WorkerBootstrap, WorkerJob

__all__ = [
    "AgentNode",
    "AgentResult",
    "BranchNode",
    "DirectWorkerLauncher",
    "Executor",
    "ForeachNode",
    "InProcessExecutor",
    "LoopNode",
    "LoopUntil",
    "ParallelNode",
    "RetryPolicy",
    "SequenceNode",
    "SharedBudget",
    "SpecProblem",
    "SubprocessExecutor",
    "WORKFLOW_TOOL_NAMES",
    "WorkerBootstrap",
    "WorkerJob",
    "WorkerLauncher",
    "Workflow",
    "WorkflowBudget",
    "WorkflowNode",
    "WorkflowResult",
    "WorkflowRunError",
    "WorkflowRunHandle",
    "WorkflowSpec",
    "WorkflowSpecError",
    "cancel_workflow",
    "cleanup_run",
    "create_workflow",
    "get_workflow",
    "in_workflow",
    "leaf_session_id",
    "list_workflows",
    "reap_runs",
    "register_workflow_tools",
    "resume_detached",
    "resume_run",
    "validate_spec",
]
