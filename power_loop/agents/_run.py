"""Running a sub-agent: `run_agent_spec` and the LLM-facing ``spawn_agent`` and ``run_agent`` tools."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..base import get_tool_runtime_context, redact_secrets
from ..errors import AgentSpecError, SessionNotFoundError
from ..events import (
    AgentEvent,
    AgentEventType,
    BaseEventPayload,
    SubagentCompletedPayload,
    SubagentLimitPayload,
    SubagentTaskStartPayload,
    SubagentTextPayload,
)
from ..llm import CancellationLike
from ..loop import AgentLoopConfig, StatefulAgentLoop
from ..store import SessionKind

if TYPE_CHECKING:
    from ..store import SessionStore
from ..tools import ToolDefinition, ToolRegistry
from ._spec import DEFAULT_MAX_ROUNDS, MAX_SPEC_ROUNDS, AgentSpec

__all__ = [
    "DEFAULT_DELEGATE_PROMPT",
    "RUN_AGENT_DEFINITION",
    "SPAWN_AGENT_DEFINITION",
    "register_spawn_agent",
    "run_agent_spec",
]

DEFAULT_DELEGATE_PROMPT = (
    "You are a focused sub-agent. Complete the task you are given using the tools available to you, "
    "then answer with a concise, self-contained report of what you found or did. Your answer is "
    "returned verbatim to the agent that delegated the task."
)

SPAWN_AGENT_DEFINITION = ToolDefinition(
    name="spawn_agent",
    description=(
        "Delegate a self-contained task to a sub-agent with its own fresh conversation. The sub-agent "
        "works on the task (optionally with a custom system prompt and a subset of your tools) and its "
        "final answer is returned as this tool's result."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "task": {"type": "string", "minLength": 1, "description": "The complete task for the sub-agent."},
            "system_prompt": {"type": "string", "description": "Instructions defining the sub-agent's role."},
            "tools": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Names of your tools the sub-agent may use (omit to give it all of them).",
            },
            "max_rounds": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_SPEC_ROUNDS,
                "description": f"Round limit of the sub-agent (default {DEFAULT_MAX_ROUNDS}).",
            },
        },
        "additionalProperties": False,
    },
    required_params=("task",),
)

RUN_AGENT_DEFINITION = ToolDefinition(
    name="run_agent",
    description=(
        "Run a sub-agent declared by an AgentSpec (name, system_prompt, and optionally tools, max_rounds, "
        "max_tokens, temperature, model, output_schema, lifecycle, metadata) on `input`, in its own fresh "
        "conversation; its final answer is returned as this tool's result."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "spec": {
                "type": ["object", "string"],
                "description": "The AgentSpec, as an object or a JSON string.",
            },
            "input": {"type": "string", "description": "The task or message given to the sub-agent."},
        },
        "additionalProperties": False,
    },
    required_params=("spec", "input"),
)


def _child_registry(parent: ToolRegistry | None, whitelist: list[str] | None) -> ToolRegistry | None:
    if whitelist is None:
        return parent
    if not whitelist:
        return None
    unknown = sorted({name for name in whitelist if parent is None or not parent.has(name)})
    if unknown:
        raise AgentSpecError(f"AgentSpec.tools: unknown tool(s): {', '.join(unknown)}", field="tools")
    assert parent is not None
    return parent.subset(whitelist)


def _output_schema(spec: AgentSpec) -> dict[str, Any] | None:
    schema = spec.output_schema
    if schema is None:
        return None
    if isinstance(schema.get("schema"), Mapping):  # the {name, schema} shape
        body = {"name": str(schema.get("name") or spec.name), "schema": dict(schema["schema"])}
        return {"type": "json_schema", "json_schema": body}
    return schema


async def _publish(
    loop: StatefulAgentLoop, kind: AgentEventType, data: BaseEventPayload, parent: str | None
) -> None:
    await loop.event_bus.publish_async(AgentEvent(kind, data=data, session_id=parent, source="subagent"))


async def run_agent_spec(
    spec: AgentSpec | Mapping[str, Any] | str,
    user_input: str,
    *,
    parent_loop: StatefulAgentLoop,
    spawn_tool_call_id: str | None = None,
    stop_event: CancellationLike = None,
) -> dict[str, Any]:
    """Run ``spec`` as a sub-agent of the session currently driven by ``parent_loop``; return its outcome.

    The child is a fresh `StatefulAgentLoop` sharing the parent's store, model, hooks and event bus, in
    a new session whose parent is the session of the running tool call (none outside a tool call).
    Returns ``{"session_id", "status", "final_text", "rounds", "depth", "usage", "output"}``;
    ``session_id`` is None when an ephemeral child completed and was deleted. A spawn deeper than the
    store's ``max_spawn_depth`` returns ``status="rejected"`` without creating a session. A failing
    child send is reported as ``status="failed"`` (its session is kept for inspection).
    Invalid specs raise `AgentSpecError`.
    """
    spec = AgentSpec.coerce(spec)
    store = await parent_loop.ensure_store()
    ctx = get_tool_runtime_context()
    parent_sid = ctx.session_id if ctx is not None else None
    depth = await _spawn_depth(store, parent_sid)
    registry = _child_registry(parent_loop.tool_registry, spec.tools)
    config = _child_config(parent_loop.config, spec)
    outcome: dict[str, Any] = {
        "session_id": None,
        "status": "rejected",
        "final_text": "",
        "rounds": 0,
        "depth": depth,
        "usage": {},
        "output": None,
    }
    rejected = depth > store.max_spawn_depth
    child_sid = "" if rejected else await _create_child(store, spec, config, parent_sid, spawn_tool_call_id)
    await _publish(
        parent_loop,
        AgentEventType.SUBAGENT_TASK_START,
        SubagentTaskStartPayload(task=user_input, preset=spec.name, sub_session_id=child_sid, depth=depth),
        parent_sid,
    )
    if rejected:
        outcome["final_text"] = (
            f"sub-agent rejected: spawn depth {depth} exceeds max_spawn_depth={store.max_spawn_depth}"
        )
    else:
        try:
            outcome.update(
                await _run_child(
                    parent_loop, spec, config, registry, user_input, child_sid, parent_sid, stop_event
                )
            )
        except asyncio.CancelledError:
            # The parent send was cancelled mid-delegation: still close the event bracket.
            outcome.update(session_id=child_sid, status="cancelled", final_text="sub-agent cancelled")
            await _completed(parent_loop, child_sid, outcome, parent_sid)
            raise
    await _completed(parent_loop, child_sid, outcome, parent_sid)
    return outcome


async def _create_child(
    store: SessionStore,
    spec: AgentSpec,
    config: AgentLoopConfig,
    parent_sid: str | None,
    spawn_tool_call_id: str | None,
) -> str:
    """The child's new session, linked to its parent and the spawning tool call."""
    return await store.create_session(
        system_prompt=spec.system_prompt,
        model=config.model,
        config=config.session_config(),
        parent_session_id=parent_sid,
        spawn_tool_call_id=spawn_tool_call_id,
        kind=SessionKind.SUBAGENT,
        lifecycle=spec.lifecycle,
        metadata={**spec.metadata, "spec_name": spec.name},
    )


async def _spawn_depth(store: SessionStore, parent_sid: str | None) -> int:
    """How deep a child of ``parent_sid`` would be (0 outside a tool call)."""
    if parent_sid is None:
        return 0
    parent_row = await store.get_session(parent_sid)
    if parent_row is None:
        raise SessionNotFoundError(parent_sid)
    return parent_row.spawn_depth + 1


def _child_config(base: AgentLoopConfig, spec: AgentSpec) -> AgentLoopConfig:
    """The parent loop's configuration with the spec's prompt, limits, model and output schema."""
    return base.replace(
        system_prompt=spec.system_prompt,
        max_rounds=spec.max_rounds,
        max_tokens=spec.max_tokens,
        temperature=float(spec.temperature),
        model=spec.model or base.model,
        response_format=None,
        output_schema=_output_schema(spec),
    )


async def _completed(
    parent_loop: StatefulAgentLoop, child_sid: str, outcome: Mapping[str, Any], parent_sid: str | None
) -> None:
    await _publish(
        parent_loop,
        AgentEventType.SUBAGENT_COMPLETED,
        SubagentCompletedPayload(
            sub_session_id=child_sid,
            status=outcome["status"],
            rounds=outcome["rounds"],
            final_text=outcome["final_text"],
        ),
        parent_sid,
    )


async def _run_child(
    parent_loop: StatefulAgentLoop,
    spec: AgentSpec,
    config: AgentLoopConfig,
    registry: ToolRegistry | None,
    user_input: str,
    child_sid: str,
    parent_sid: str | None,
    stop_event: CancellationLike,
) -> dict[str, Any]:
    """Drive the child session; returns the outcome keys that differ from a rejection."""
    store = await parent_loop.ensure_store()
    child = StatefulAgentLoop(
        llm=parent_loop.llm,
        store=store,
        config=config,
        tool_registry=registry,
        hooks=parent_loop.hooks,
        event_bus=parent_loop.event_bus,
    )
    outcome: dict[str, Any] = {"session_id": child_sid}
    try:
        result = await child.send(user_input, child_sid, stop_event=stop_event)
    except Exception as exc:  # a failed child is reported to the parent, never raised through it
        outcome.update(
            status="failed",
            final_text=redact_secrets(f"sub-agent failed: {type(exc).__name__}: {exc}"),
            rounds=0,
        )
        return outcome
    outcome.update(
        status=result.status,
        final_text=result.final_text,
        rounds=result.rounds,
        usage=dict(result.usage),
        output=result.output,
    )
    if result.status == "completed":
        await _publish(
            parent_loop,
            AgentEventType.SUBAGENT_TEXT,
            SubagentTextPayload(
                sub_session_id=child_sid,
                status=result.status,
                rounds=result.rounds,
                final_text=result.final_text,
            ),
            parent_sid,
        )
        if spec.lifecycle == "ephemeral":
            await store.close_session(child_sid)
            outcome["session_id"] = None
    elif result.status == "hit_round_limit":
        await _publish(
            parent_loop,
            AgentEventType.SUBAGENT_LIMIT,
            SubagentLimitPayload(sub_session_id=child_sid, max_rounds=spec.max_rounds),
            parent_sid,
        )
    return outcome


def register_spawn_agent(
    registry: ToolRegistry, *, include_run_agent: bool = True, overwrite: bool = False
) -> None:
    """Add the ``spawn_agent`` tool to ``registry`` and, with ``include_run_agent`` (the published
    default), ``run_agent``, which runs a full :class:`AgentSpec` (an object or a JSON string).

    Their result is the sub-agent's final text, prefixed ``"[sub-agent status=<s>]\\n"`` unless the
    sub-agent completed; an invalid spec gives ``"Error: invalid AgentSpec — ..."``; called outside a
    running loop they return an error string.
    """

    async def spawn_agent(
        task: str,
        system_prompt: str | None = None,
        tools: list[str] | None = None,
        max_rounds: int | None = None,
    ) -> str:
        ctx = get_tool_runtime_context()
        if ctx is None or not isinstance(ctx.loop, StatefulAgentLoop):
            return "Error: spawn_agent can only run inside a StatefulAgentLoop send."
        try:
            spec = AgentSpec(
                name="delegate",
                system_prompt=system_prompt or DEFAULT_DELEGATE_PROMPT,
                tools=tools,
                max_rounds=max_rounds if max_rounds is not None else DEFAULT_MAX_ROUNDS,
            )
            outcome = await run_agent_spec(
                spec, task, parent_loop=ctx.loop, spawn_tool_call_id=ctx.tool_call_id
            )
        except AgentSpecError as exc:
            return f"Error: invalid AgentSpec — {exc}"
        text = str(outcome["final_text"])
        if outcome["status"] != "completed":
            return f"[sub-agent status={outcome['status']}]\n{text}"
        return text

    registry.register(SPAWN_AGENT_DEFINITION, spawn_agent, overwrite=overwrite)
    if include_run_agent:
        registry.register(RUN_AGENT_DEFINITION, _run_agent, overwrite=overwrite)


async def _run_agent(spec: Any, input: str) -> str:  # `input`: the published parameter name
    """The ``run_agent`` tool: ``spec`` (an AgentSpec object or JSON string) run on ``input``."""
    ctx = get_tool_runtime_context()
    if ctx is None or not isinstance(ctx.loop, StatefulAgentLoop):
        return "Error: run_agent can only run inside a StatefulAgentLoop send."
    try:
        outcome = await run_agent_spec(
            AgentSpec.coerce(spec), input, parent_loop=ctx.loop, spawn_tool_call_id=ctx.tool_call_id
        )
    except AgentSpecError as exc:
        return f"Error: invalid AgentSpec — {exc}"
    text = str(outcome["final_text"])
    if outcome["status"] != "completed":
        return f"[sub-agent status={outcome['status']}]\n{text}"
    return text
