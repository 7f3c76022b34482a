"""Pins the public surface (SPEC §3, C24): STABLE_API names and the call shapes of their methods.

Adding names or optional keyword parameters is fine; removing or renaming anything here is a breaking
change that needs a major version.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys

import pytest

import power_loop

STABLE = (
    "StatefulAgentLoop, StatefulResult, FollowUpQueued, AgentLoopConfig, AgentLoopResult, SessionStore, "
    "SubagentLifecycle, PowerLoopError, SessionPendingError, SessionNotFoundError, LLMTimeout, "
    "LLMRetryExhausted, CancellationRequested, LLMRetryPolicy, CancellationToken, AgentHooks, AgentEventBus, "
    "HookPoint, HookDirective, ToolRegistry, ToolDefinition, LLMService, LLMRequest, LLMResponse, "
    "LLMStreamChunk, LLMProviderConfig, create_llm_service_from_env, create_llm_service_from_config"
).split(", ")


def _shape(fn) -> list[tuple[str, str, str]]:
    sig = inspect.signature(fn)
    out = []
    for p in sig.parameters.values():
        default = "" if p.default is inspect.Parameter.empty else repr(p.default)
        out.append((p.name, p.kind.name, default))
    return out


def test_stable_api_is_exactly_the_28_names_in_order():
    assert list(power_loop.STABLE_API) == STABLE
    for name in STABLE:
        assert hasattr(power_loop, name), name
        assert name in power_loop.__all__, name


def test_every_name_in___all___is_importable():
    for name in power_loop.__all__:
        assert hasattr(power_loop, name), name


LOOP_METHODS = {
    "__init__": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("llm", "KEYWORD_ONLY", ""),
        ("store", "KEYWORD_ONLY", "None"),
        ("dsn", "KEYWORD_ONLY", "None"),
        ("db_path", "KEYWORD_ONLY", "None"),
        ("table_prefix", "KEYWORD_ONLY", "None"),
        ("schema", "KEYWORD_ONLY", "None"),
        ("config", "KEYWORD_ONLY", "None"),
        ("tool_registry", "KEYWORD_ONLY", "None"),
        ("hooks", "KEYWORD_ONLY", "None"),
        ("event_bus", "KEYWORD_ONLY", "None"),
        ("max_spawn_depth", "KEYWORD_ONLY", "None"),
        ("session_cache_size", "KEYWORD_ONLY", "256"),
    ],
    "send": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("user_input", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
        ("tools", "KEYWORD_ONLY", "None"),
        ("system_prompt", "KEYWORD_ONLY", "None"),
        ("heal_pending", "KEYWORD_ONLY", "False"),
    ],
    "follow_up": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("user_input", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
        ("tools", "KEYWORD_ONLY", "None"),
        ("system_prompt", "KEYWORD_ONLY", "None"),
    ],
    "resume": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
    ],
    "submit_input": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("interaction_id", "POSITIONAL_OR_KEYWORD", ""),
        ("value", "POSITIONAL_OR_KEYWORD", ""),
        ("stop_event", "KEYWORD_ONLY", "None"),
    ],
    "abort_pending": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("reason", "KEYWORD_ONLY", "'aborted'"),
    ],
    "new_session": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("metadata", "KEYWORD_ONLY", "None"),
        ("system_prompt", "KEYWORD_ONLY", "None"),
    ],
    "close_session": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("cascade", "KEYWORD_ONLY", "True"),
    ],
    "schedule_timer": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("delay_s", "KEYWORD_ONLY", "None"),
        ("due_at_ms", "KEYWORD_ONLY", "None"),
        ("note", "KEYWORD_ONLY", ""),
        ("interval_s", "KEYWORD_ONLY", "None"),
    ],
    "get_messages": [
        ("self", "POSITIONAL_OR_KEYWORD", ""),
        ("session_id", "POSITIONAL_OR_KEYWORD", ""),
        ("include_compacted", "KEYWORD_ONLY", "False"),
    ],
    "aclose": [("self", "POSITIONAL_OR_KEYWORD", ""), ("drain_timeout_s", "KEYWORD_ONLY", "30.0")],
}


@pytest.mark.parametrize("method", sorted(LOOP_METHODS))
def test_stateful_agent_loop_call_shapes(method):
    shape = _shape(getattr(power_loop.StatefulAgentLoop, method))
    pinned = LOOP_METHODS[method]
    assert shape[: len(pinned)] == pinned
    # Additions are allowed only as optional keyword-only parameters after the pinned ones.
    assert all(kind == "KEYWORD_ONLY" and default for _, kind, default in shape[len(pinned) :])


@pytest.mark.parametrize(
    "name",
    [
        "ensure_store",
        "new_session_sync",
        "prewarm",
        "send_sync",
        "follow_up_sync",
        "get_pending",
        "get_session_stats",
        "list_session_stats",
        "resolve_system_prompt",
        "cancel_timer",
        "list_timers",
        "close",
        "__aenter__",
        "__aexit__",
    ],
)
def test_stateful_agent_loop_has_method(name):
    assert callable(getattr(power_loop.StatefulAgentLoop, name))


def test_result_and_config_fields():
    fields = [f.name for f in dataclasses.fields(power_loop.StatefulResult)]
    assert fields[:8] == [
        "session_id",
        "status",
        "final_text",
        "rounds",
        "pending_tool_calls",
        "pending_interactions",
        "usage",
        "tool_calls",
    ]
    assert fields[8:] == ["output"]
    config = power_loop.AgentLoopConfig()
    assert (config.max_rounds, config.temperature, config.max_tokens, config.system_prompt) == (
        24,
        0.0,
        8000,
        None,
    )
    assert [f.name for f in dataclasses.fields(power_loop.FollowUpQueued)][:2] == [
        "session_id",
        "queue_depth",
    ]


def test_enum_values():
    assert power_loop.HookPoint.TOOL_BEFORE == "tool.before"
    assert {p.value for p in power_loop.HookPoint} >= {
        "session.start",
        "session.end",
        "round.start",
        "round.end",
        "llm.before",
        "llm.after",
        "tools.batch.before",
        "tools.batch.after",
        "tool.before",
        "tool.after",
        "tool.error",
        "round.decide",
        "compact.before",
        "compact.after",
        "message.append",
        "memory.recalled",
        "timer.fire",
    }
    assert [d.value for d in power_loop.HookDirective] == ["continue", "skip", "break", "short_circuit"]
    assert [x.value for x in power_loop.SubagentLifecycle] == ["ephemeral", "linked", "detached"]


def test_llm_contract_shapes():
    request = power_loop.LLMRequest(messages=[{"role": "user", "content": "hi"}], system_prompt="s")
    assert request.to_messages()[0] == {"role": "system", "content": "s"}
    params = inspect.signature(power_loop.LLMService.complete).parameters
    assert list(params)[:2] == ["self", "request"]
    assert {"on_chunk_delta_text", "on_chunk_think", "on_stream_end"} <= set(params)


def test_import_paths_of_public_subpackages():
    for module in [
        "power_loop.store",
        "power_loop.llm",
        "power_loop.tools",
        "power_loop.hooks",
        "power_loop.events",
        "power_loop.testing",
        "power_loop.loop",
        "power_loop.errors",
    ]:
        assert importlib.import_module(module).__all__


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_power_loop_is_lazy():
    loaded = _modules_after("import power_loop")
    assert not loaded & {
        "asyncio",
        "ssl",
        "subprocess",
        "http",
        "email",
        "power_loop.loop",
        "power_loop.store",
    }


def test_using_the_loop_pulls_no_network_or_driver_modules():
    loaded = _modules_after("from power_loop import StatefulAgentLoop, ToolRegistry")
    assert "power_loop.loop" in loaded
    assert not loaded & {"http", "email", "openai", "anthropic", "asyncpg", "aiomysql", "mcp", "jsonschema"}


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        power_loop.does_not_exist  # noqa: B018
