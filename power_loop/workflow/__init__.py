"""Workflows: a strict JSON language for multi-agent runs, journaled so a crashed run resumes.

A `WorkflowSpec` is a tree of nodes — ``agent`` leaves (an `AgentSpec` run on a templated input) and
the containers ``sequence``, ``parallel``, ``foreach``, ``branch`` and ``loop``. `create_workflow`
validates a spec (every problem at once, with its JSON path, in `WorkflowSpecError.problems`);
``await workflow.run()`` executes it and commits each leaf's outcome to the store's journal as it
finishes; `resume_run` finishes an interrupted run, replaying what was done. See docs/workflows.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_dir, lazy_getattr

if TYPE_CHECKING:
    from ._api import (
        Workflow,
        WorkflowRunHandle,
        cancel_workflow,
        create_workflow,
        get_workflow,
        list_workflows,
        rehydrate,
        resume_detached,
        resume_run,
        run_detached,
    )
    from ._engine import (
        in_workflow,
    )
    from ._errors import (
        SpecProblem,
        WorkflowRunError,
        WorkflowSpecError,
    )
    from ._leaf import (
        Executor,
        InProcessExecutor,
        leaf_session_id,
    )
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
    from ._results import (
        AgentResult,
        SharedBudget,
        WorkflowResult,
    )
    from ._shared import (
        leaf_message_id,
        run_leaf_once,
    )
    from ._spec import (
        WorkflowSpec,
        replayable_node_ids,
        validate_spec,
    )
    from ._subprocess import (
        DirectWorkerLauncher,
        SubprocessExecutor,
        WorkerLauncher,
        cleanup_run,
        reap_runs,
    )
    from ._tools import (
        WORKFLOW_TOOL_NAMES,
        register_workflow_tools,
    )
    from ._worker_job import (
        WorkerBootstrap,
        WorkerJob,
    )

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
    "leaf_message_id",
    "leaf_session_id",
    "list_workflows",
    "reap_runs",
    "register_workflow_tools",
    "resume_detached",
    "rehydrate",
    "replayable_node_ids",
    "resume_run",
    "run_detached",
    "run_leaf_once",
    "validate_spec",
]

# Loaded on first access: the worker process (`python -m power_loop.workflow.worker`) imports only
# what a leaf needs, so a subprocess leaf costs little more than interpreter start-up.
_LAZY = {
    "Workflow": "._api",
    "WorkflowRunHandle": "._api",
    "cancel_workflow": "._api",
    "create_workflow": "._api",
    "get_workflow": "._api",
    "list_workflows": "._api",
    "resume_detached": "._api",
    "resume_run": "._api",
    "rehydrate": "._api",
    "run_detached": "._api",
    "in_workflow": "._engine",
    "SpecProblem": "._errors",
    "WorkflowRunError": "._errors",
    "WorkflowSpecError": "._errors",
    "Executor": "._leaf",
    "InProcessExecutor": "._leaf",
    "leaf_session_id": "._leaf",
    "AgentNode": "._nodes",
    "BranchNode": "._nodes",
    "ForeachNode": "._nodes",
    "LoopNode": "._nodes",
    "LoopUntil": "._nodes",
    "ParallelNode": "._nodes",
    "RetryPolicy": "._nodes",
    "SequenceNode": "._nodes",
    "WorkflowBudget": "._nodes",
    "WorkflowNode": "._nodes",
    "AgentResult": "._results",
    "SharedBudget": "._results",
    "WorkflowResult": "._results",
    "WorkflowSpec": "._spec",
    "validate_spec": "._spec",
    "replayable_node_ids": "._spec",
    "leaf_message_id": "._shared",
    "run_leaf_once": "._shared",
    "DirectWorkerLauncher": "._subprocess",
    "SubprocessExecutor": "._subprocess",
    "WorkerLauncher": "._subprocess",
    "cleanup_run": "._subprocess",
    "reap_runs": "._subprocess",
    "WORKFLOW_TOOL_NAMES": "._tools",
    "register_workflow_tools": "._tools",
    "WorkerBootstrap": "._worker_job",
    "WorkerJob": "._worker_job",
}
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(_LAZY, globals())
