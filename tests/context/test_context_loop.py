"""Loop-level context tests: `StatefulAgentLoop(context=ContextPipeline(...))`.

They exercise the engine integration (see docs/context.md § "Engine integration") end to end.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.context import (
    DEFAULT_FOLD_AGENT_PROMPT,
    DEFAULT_SUMMARY_PROMPT,
    AgenticFold,
    ContextPipeline,
    LLMSummaryFold,
    NotesMemory,
    ProjectedRepresentation,
    VerbatimRepresentation,
    check_messages,
    request_chars,
)
from power_loop.store import SessionStore
from power_loop.testing import ScriptedLLM
from power_loop.tools import ToolRegistry

LONG = "the quick brown fox jumps over the lazy dog " * 40


def _agent_llm() -> ScriptedLLM:
    """Each send: one shell call, then a text answer; summary requests get a deterministic summary."""

    def respond(request: Any) -> Any:
        if request.system_prompt in (DEFAULT_SUMMARY_PROMPT, DEFAULT_FOLD_AGENT_PROMPT):
            return f"<summary>{len(request.messages[0]['content'])} chars folded</summary>"
        if request.messages and request.messages[-1]["role"] == "tool":
            return ScriptedLLM.text("done " + LONG[:200]).with_usage(
                len(json.dumps(request.messages)) // 4, 20
            )
        asked = next(
            m["content"] for m in reversed(request.messages) if m["role"] == "user" and not m.get("name")
        )
        return ScriptedLLM.tool_call("shell", {"cmd": asked[:20]})

    return ScriptedLLM(responder=respond)


def _registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.tool(name="shell", description="run a command")(lambda cmd: "output " + LONG)
    return registry


def _pipeline(rep: Any) -> ContextPipeline:
    return ContextPipeline(
        representation=rep, fold=LLMSummaryFold(keep_last_sends=2), memory=NotesMemory(), context_tokens=3000
    )


def _shape(request: Any) -> dict[str, Any]:
    return {"messages": request.messages, "system": request.system_prompt, "tools": request.tools}


@pytest.mark.parametrize("rep", [VerbatimRepresentation(), ProjectedRepresentation()])
async def test_warm_and_cold_loops_send_identical_requests_after_folds(store: SessionStore, rep: Any) -> None:
    warm_llm, cold_llm = _agent_llm(), _agent_llm()
    warm = StatefulAgentLoop(llm=warm_llm, store=store, tool_registry=_registry(), context=_pipeline(rep))
    warm_sid = await warm.new_session()
    cold_sid = await warm.new_session()
    for sid in (warm_sid, cold_sid):
        await store.add_note(sid, "the user is Ada")
    for i in range(10):
        await warm.send(f"task {i}: {LONG}", warm_sid)
        cold = StatefulAgentLoop(
            llm=cold_llm, store=store, tool_registry=_registry(), context=_pipeline(rep), session_cache_size=0
        )
        await cold.send(f"task {i}: {LONG}", cold_sid)
        await cold.aclose()
    assert await store.list_compactions(warm_sid), "the budget should have forced folds"
    assert [_shape(r) for r in warm_llm.requests] == [_shape(r) for r in cold_llm.requests]
    for request in warm_llm.requests:
        assert check_messages(request.messages) is None
    main = [r for r in warm_llm.requests if r.system_prompt != DEFAULT_SUMMARY_PROMPT]
    assert all(r.messages[-1].get("name") == "memory_notes" for r in main)  # memory rides at the end
    await warm.aclose()


@pytest.mark.parametrize(
    "rep", [VerbatimRepresentation(), ProjectedRepresentation()], ids=["verbatim", "projected"]
)
@pytest.mark.parametrize(
    "fold", [LLMSummaryFold(keep_last_sends=2), AgenticFold(keep_last_sends=2)], ids=["summary", "agentic"]
)
async def test_thirty_long_sends_keep_requests_bounded(store: SessionStore, rep: Any, fold: Any) -> None:
    llm = _agent_llm()
    pipeline = ContextPipeline(representation=rep, fold=fold, memory=NotesMemory(), context_tokens=3000)
    loop = StatefulAgentLoop(llm=llm, store=store, tool_registry=_registry(), context=pipeline)
    sid = await loop.new_session()
    for i in range(30):
        result = await loop.send(f"task {i}: {LONG}", sid)
        assert result.status == "completed"
    folds = (DEFAULT_SUMMARY_PROMPT, DEFAULT_FOLD_AGENT_PROMPT)
    sizes = [request_chars(r.messages) for r in llm.requests if r.system_prompt not in folds]
    assert max(sizes[20:]) <= 2 * max(sizes[:6])
    assert sizes[-1] < sum(sizes[:6])
    compacted = await store.count_messages(sid)
    assert compacted == 30 * 4 + len(await store.list_compactions(sid))  # the audit log keeps everything
    for request in llm.requests:
        assert check_messages(request.messages) is None
    await loop.aclose()


async def test_recall_tool_is_registered_and_reads_the_session(store: SessionStore) -> None:
    llm = ScriptedLLM(
        [
            "first answer",
            ScriptedLLM.tool_call("recall_send", {"send_index": 1}),
            "recalled",
        ]
    )
    loop = StatefulAgentLoop(
        llm=llm, store=store, tool_registry=ToolRegistry(), context=_pipeline(ProjectedRepresentation())
    )
    sid = await loop.new_session()
    await loop.send("remember the word PAPAYA", sid)
    result = await loop.send("what was the word?", sid)
    assert result.final_text == "recalled"
    tool_result = [m for m in llm.requests[-1].messages if m["role"] == "tool"][-1]
    assert tool_result["name"] == "recall_send" and "remember the word PAPAYA" in tool_result["content"]
    await loop.aclose()


# ------------------------------------------------------------------ the published config axes


async def test_config_axes_opt_the_loop_into_folding(store: SessionStore) -> None:
    from power_loop import AgentLoopConfig

    llm = _agent_llm()
    config = AgentLoopConfig(
        representation=ProjectedRepresentation(),
        fold_strategy=LLMSummaryFold(keep_last_sends=2),
        max_tokens=3000,
    )
    loop = StatefulAgentLoop(llm=llm, store=store, tool_registry=_registry(), config=config)
    pipeline = loop.context
    assert pipeline is not None and pipeline.representation is config.representation
    assert pipeline.fold is config.fold_strategy and pipeline.context_tokens == 3000
    assert loop.tool_registry is not None and loop.tool_registry.has("recall_send")
    sid = await loop.new_session()
    for i in range(12):
        assert (await loop.send(f"task {i}: {LONG}", sid)).status == "completed"
    assert await store.list_compactions(sid)  # it folded, as the config asked
    await loop.aclose()


async def test_published_deprecated_keywords(store: SessionStore) -> None:
    from power_loop import AgentLoopConfig, ConfigError

    # compactor=None (2.x): never compact, even with a representation set (whose default would fold).
    with pytest.deprecated_call():
        config = AgentLoopConfig(representation=ProjectedRepresentation(), compactor=None, max_tokens=3000)
    assert config.projection_representation is config.representation
    loop = StatefulAgentLoop(llm=_agent_llm(), store=store, tool_registry=_registry(), config=config)
    assert loop.context is not None and loop.context.fold is None
    sid = await loop.new_session()
    for i in range(12):
        assert (await loop.send(f"task {i}: {LONG}", sid)).status == "completed"
    assert await store.list_compactions(sid) == []
    await loop.aclose()
    assert AgentLoopConfig(representation=VerbatimRepresentation()).projection_representation is None
    with pytest.deprecated_call():
        assert not AgentLoopConfig(migrate_history_on_projection_switch=False).migrate_history_on_switch
    for legacy in ({"compactor": object()}, {"history_projector": object()}):
        with pytest.deprecated_call(), pytest.raises(ConfigError, match="has no counterpart"):
            AgentLoopConfig(**legacy)


async def test_config_axes_defaults_conflicts_and_reassignment(store: SessionStore) -> None:
    from power_loop import AgentLoopConfig, ConfigError

    only_rep = AgentLoopConfig(representation=ProjectedRepresentation())
    loop = StatefulAgentLoop(llm=_agent_llm(), store=store, config=only_rep)
    assert isinstance(loop.context.fold, LLMSummaryFold)  # the published default for the other axis
    # Nothing set: today's opt-in default, no pipeline.
    assert StatefulAgentLoop(llm=_agent_llm(), store=store).context is None
    # Re-assigning an axis re-validates (a bad value raises, the old one stays) and the loop follows.
    with pytest.raises(ConfigError, match="fold_strategy"):
        only_rep.fold_strategy = "fold please"  # type: ignore[assignment]
    assert isinstance(only_rep.fold_strategy, type(None))
    agentic = AgenticFold(keep_last_sends=2)
    only_rep.fold_strategy = agentic
    assert loop.context.fold is agentic
    with pytest.raises(ConfigError, match="max_tokens"):
        only_rep.max_tokens = 0
    assert only_rep.max_tokens == 8000
    # context= and config axes: the same objects are fine, different ones are a ConfigError.
    same = ContextPipeline(representation=only_rep.representation, fold=agentic)
    assert StatefulAgentLoop(llm=_agent_llm(), store=store, config=only_rep, context=same).context is same
    with pytest.raises(ConfigError, match="disagree"):
        StatefulAgentLoop(llm=_agent_llm(), store=store, config=only_rep, context=ContextPipeline())
    for bad in ({"representation": 1}, {"memory": "m"}, {"fold_timeout_s": 0}, {"memory_budget_tokens": -1}):
        with pytest.raises(ConfigError):
            AgentLoopConfig(**bad)
    published = AgentLoopConfig(fold_timeout_s=60.0, memory=NotesMemory(), migrate_history_on_switch=False)
    pipeline = StatefulAgentLoop(llm=_agent_llm(), store=store, config=published).context
    assert pipeline is not None and pipeline.fold is None and pipeline.fold_timeout_s == 60.0
