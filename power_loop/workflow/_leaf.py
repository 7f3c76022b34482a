"""Running one leaf: the `Executor` seam and the default `InProcessExecutor`.

A leaf's child session id is derived from its idempotency key (``<run_id>:<step_key>``, plus the
attempt), so a leaf that is run again — after a crash, on `resume_run` — finds its session instead of
creating a second one: a session that already holds a final answer is adopted without calling the
model; an unfinished one is discarded and the leaf re-runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..agents import AgentSpec
from ..errors import ConfigError
from ..llm import CancellationLike
from ..loop import AgentLoopConfig, StatefulAgentLoop, StatefulResult
from ..store import SessionKind, SessionStore
from ..tools import ToolRegistry

__all__ = [
    "Executor",
    "InProcessExecutor",
    "adopt_finished",
    "create_leaf_session",
    "failed_leaf",
    "finished_outcome",
    "leaf_config",
    "leaf_loop",
    "leaf_outcome",
    "leaf_registry",
    "leaf_session_id",
    "sent_leaf",
]


def leaf_session_id(idempotency_key: str, attempt: int = 1) -> str:
    """The deterministic child-session id of a leaf attempt (``wf_`` + 24 hex digits)."""
    digest = hashlib.sha256(f"{idempotency_key}#{attempt}".encode()).hexdigest()
    return "wf_" + digest[:24]


@runtime_checkable
class Executor(Protocol):
    """Runs one leaf. Returns ``{"session_id", "status", "final_text", "usage", "output", "rounds"}``;
    a failing leaf is reported with ``status="failed"`` and ``error``, never raised."""

    async def run_agent(
        self,
        spec: AgentSpec,
        user_input: str,
        *,
        parent_loop: StatefulAgentLoop,
        driver_sid: str,
        session_id: str,
        metadata: Mapping[str, Any],
        stop_event: CancellationLike = None,
    ) -> dict[str, Any]:
        """Run one leaf attempt in session ``session_id``, a child of ``driver_sid``."""
        ...


def leaf_registry(parent: ToolRegistry | None, whitelist: list[str] | None) -> ToolRegistry | str | None:
    """The leaf's tools (None = none), or an error text naming tools the parent does not have."""
    if whitelist is None:
        return parent
    unknown = sorted({n for n in whitelist if parent is None or not parent.has(n)})
    if unknown:
        return f"AgentSpec.tools names tool(s) the parent loop does not have: {', '.join(unknown)}"
    return parent.subset(whitelist) if parent is not None and whitelist else None


def _response_format(spec: AgentSpec) -> dict[str, Any] | None:
    schema = spec.output_schema
    if schema is None:
        return None
    if isinstance(schema.get("schema"), Mapping):
        body = {"name": str(schema.get("name") or spec.name), "schema": dict(schema["schema"])}
        return {"type": "json_schema", "json_schema": body}
    return dict(schema)


async def _finished_answer(store: SessionStore, session_id: str) -> str | None:
    """The final assistant text of a session whose last send completed, else None."""
    state = await store.get_state(session_id)
    if state is None or state.pending:
        return None
    rows = await store.load_active_messages(session_id)
    if not rows or rows[-1].role != "assistant" or rows[-1].tool_calls:
        return None
    content = rows[-1].content
    return content if isinstance(content, str) else None


def _parse_output(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def adopt_finished(store: SessionStore, spec: AgentSpec, session_id: str) -> dict[str, Any] | None:
    """The outcome of a leaf session left by an earlier run of this very leaf, if it finished.

    A session holding a final answer finished before a crash but was not journaled: it is adopted
    instead of calling the model again. An unfinished one is discarded, so the leaf runs afresh.
    """
    if await store.get_session(session_id) is None:
        return None
    adopted = await finished_outcome(store, spec, session_id)
    if adopted is None:
        await store.close_session(session_id)
    return adopted


async def finished_outcome(store: SessionStore, spec: AgentSpec, session_id: str) -> dict[str, Any] | None:
    """The outcome of leaf session ``session_id`` when it holds a final answer, else None (read only:
    an unfinished session is left as it is)."""
    text = await _finished_answer(store, session_id)
    if text is None:
        return None
    stats = await store.get_session_stats(session_id)
    usage = {} if stats is None else {"total_tokens": stats.total_tokens}
    output = _parse_output(text) if spec.output_schema is not None else None
    return {"status": "completed", "final_text": text, "usage": usage, "output": output}


def leaf_config(base: AgentLoopConfig, spec: AgentSpec) -> AgentLoopConfig:
    """The parent loop's config with the leaf spec's prompt, limits, model and output schema."""
    return base.replace(
        system_prompt=spec.system_prompt,
        max_rounds=spec.max_rounds,
        max_tokens=spec.max_tokens,
        temperature=float(spec.temperature),
        model=spec.model or base.model,
        response_format=None,
        output_schema=_response_format(spec),
    )


async def create_leaf_session(
    store: SessionStore,
    spec: AgentSpec,
    config: AgentLoopConfig,
    driver_sid: str,
    session_id: str,
    metadata: Mapping[str, Any],
) -> None:
    """Create the leaf's linked child session ``session_id`` under the run's driver session."""
    await store.create_session(
        system_prompt=spec.system_prompt,
        model=config.model,
        config=config.session_config(),
        parent_session_id=driver_sid,
        kind=SessionKind.SUBAGENT,
        lifecycle="linked",
        metadata={**spec.metadata, **metadata, "spec_name": spec.name},
        session_id=session_id,
    )


def leaf_outcome(session_id: str, **fields: Any) -> dict[str, Any]:
    """An `Executor` outcome dict for the leaf session ``session_id`` (``fields`` over the defaults)."""
    return {"session_id": session_id, "usage": {}, "output": None, "rounds": 0, **fields}


def failed_leaf(session_id: str, error: str) -> dict[str, Any]:
    """The outcome of a leaf that could not run or raised: the engine decides (retry, halt, continue)."""
    return leaf_outcome(session_id, status="failed", final_text="", error=error)


def sent_leaf(session_id: str, result: StatefulResult) -> dict[str, Any]:
    """The outcome of the leaf's send."""
    return leaf_outcome(
        session_id,
        status=result.status,
        final_text=result.final_text,
        usage=dict(result.usage),
        output=result.output,
        rounds=result.rounds,
    )


def leaf_loop(
    parent: StatefulAgentLoop,
    store: SessionStore,
    spec: AgentSpec,
    registry: ToolRegistry | None,
    lease_ttl_s: float | None = None,
) -> StatefulAgentLoop:
    """A loop for the leaf on ``store``: the parent's model, hooks and events, the leaf's config and tools."""
    return StatefulAgentLoop(
        llm=parent.llm,
        store=store,
        config=leaf_config(parent.config, spec),
        tool_registry=registry,
        hooks=parent.hooks,
        event_bus=parent.event_bus,
        lease_ttl_s=lease_ttl_s,
    )


class InProcessExecutor:
    """Runs each leaf in this process as a linked child session of the run's driver session."""

    async def run_agent(
        self,
        spec: AgentSpec,
        user_input: str,
        *,
        parent_loop: StatefulAgentLoop,
        driver_sid: str,
        session_id: str,
        metadata: Mapping[str, Any],
        stop_event: CancellationLike = None,
    ) -> dict[str, Any]:
        """Run one leaf attempt in this process, in session ``session_id`` under ``driver_sid``."""
        store = await parent_loop.ensure_store()
        adopted = await adopt_finished(store, spec, session_id)
        if adopted is not None:
            return leaf_outcome(session_id, **adopted)
        registry = leaf_registry(parent_loop.tool_registry, spec.tools)
        if isinstance(registry, str):
            return failed_leaf(session_id, registry)
        child = leaf_loop(parent_loop, store, spec, registry)
        try:
            await create_leaf_session(store, spec, child.config, driver_sid, session_id, metadata)
        except ConfigError as exc:  # deeper than max_spawn_depth, or the leaf is being run elsewhere
            return failed_leaf(session_id, str(exc))
        try:
            result = await child.send(user_input, session_id, stop_event=stop_event)
        except Exception as exc:  # reported as a failed leaf: the engine decides (retry, halt, continue)
            return failed_leaf(session_id, f"{type(exc).__name__}: {exc}")
        return sent_leaf(session_id, result)
