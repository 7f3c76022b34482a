"""One redaction rule (``power_loop.base.redact_secrets``) on every sink a provider error can reach:
the stored history, events, the logging and JSONL sinks, and exports — on every backend."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from loop_helpers import make_tools

from power_loop import AgentLoopConfig, LLMRetryPolicy, open_store
from power_loop.base import redact_secrets
from power_loop.contrib.jsonl_sink import attach_jsonl_sink
from power_loop.contrib.logging_sink import attach_logging_sink
from power_loop.testing import ScriptedLLM

KEY = "sk-ant-api03-SECRETSECRETSECRET0123456789"
DSN_PASSWORD = "hunter2pw"
ECHOED = (
    f"401 Unauthorized: invalid x-api-key {KEY}; request headers Authorization: Bearer {KEY}; "
    f"api_key={KEY} store postgresql://app:{DSN_PASSWORD}@db.internal/app"
)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"key {KEY} rejected", "key *** rejected"),
        ("sk-proj-abcdefgh12345678", "***"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("api_key=plainvalue&x=1", "api_key=***&x=1"),
        ('{"password": "pw1"}', '{"password": "***"}'),
        ("mysql://root:pw@h:3306/db", "mysql://root:***@h:3306/db"),
        ("x-api-key: abc123", "x-api-key: ***"),
        ("Authorization: Basic dXNlcjpwdw==", "Authorization: Basic ***"),
        ("a basic example", "a basic example"),
        ("nothing secret here: sk-1 is too short", "nothing secret here: sk-1 is too short"),
    ],
)
def test_the_rule(text: str, kept: str) -> None:
    assert redact_secrets(text) == kept
    assert redact_secrets(kept) == kept  # idempotent


def _clean(blob: str) -> None:
    assert KEY not in blob and DSN_PASSWORD not in blob and "SECRETSECRET" not in blob


async def test_provider_error_echoing_the_key_reaches_no_sink(
    make_loop: Any, target: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = LLMRetryPolicy(max_attempts=2, backoff_initial=0.0, backoff_max=0.0, total_timeout=None)
    llm = ScriptedLLM(
        [ScriptedLLM.error(ConnectionError(ECHOED)), ScriptedLLM.error(ConnectionError(ECHOED))]
    )
    loop = make_loop(llm=llm, config=AgentLoopConfig(retry_policy=policy))
    seen: list[str] = []
    loop.event_bus.subscribe(None, lambda event: seen.append(repr(event.payload)))
    detach = attach_logging_sink(loop.event_bus, logger="pl.secrets", level=logging.WARNING)
    jsonl = tmp_path / "events.jsonl"
    with caplog.at_level(logging.DEBUG), attach_jsonl_sink(loop.event_bus, jsonl):
        sid = await loop.new_session()
        result = await loop.send("hi", sid)
    detach()
    assert result.status == "degraded"
    assert any("llm_degraded" in r or "error_message" in r for r in seen)
    _clean(result.final_text)
    _clean(json.dumps(await loop.get_messages(sid), default=str))
    _clean("\n".join(seen))
    _clean(jsonl.read_text())
    _clean(caplog.text)
    async with await open_store(target["dsn"], table_prefix=target["table_prefix"]) as store:
        _clean(json.dumps(await store.export_session(sid), default=str))


async def test_a_tool_error_echoing_a_key_is_stored_redacted(make_loop: Any) -> None:
    def leaky(x: str) -> str:
        raise ValueError(ECHOED)

    llm = ScriptedLLM([ScriptedLLM.tool_call("leaky", {"x": "1"}), ScriptedLLM.text("done")])
    loop = make_loop(llm=llm, tool_registry=make_tools(leaky=leaky))
    seen: list[str] = []
    loop.event_bus.subscribe(None, lambda event: seen.append(repr(event.payload)))
    sid = await loop.new_session()
    await loop.send("go", sid)
    history = json.dumps(await loop.get_messages(sid), default=str)
    _clean(history)
    _clean("\n".join(seen))
    assert "Error: ValueError: 401 Unauthorized" in history


async def test_without_a_retry_policy_the_error_event_is_redacted(make_loop: Any) -> None:
    llm = ScriptedLLM([ScriptedLLM.error(ConnectionError(ECHOED))])
    loop = make_loop(llm=llm)
    seen: list[str] = []
    loop.event_bus.subscribe(None, lambda event: seen.append(repr(event.payload)))
    sid = await loop.new_session()
    with pytest.raises(ConnectionError):
        await loop.send("hi", sid)
    assert any("agent_error" in s or "ConnectionError" in s for s in seen)
    _clean("\n".join(seen))
    _clean(json.dumps(await loop.get_messages(sid), default=str))


# A password the 500-character cut of an error message would split: ``…://app:Zq9x`` then the cut.
CUT_PASSWORD = "Zq9xZq9xZq9xZq9x"
_HEAD = " store postgresql://app:"
CUT_ECHO = "x" * (500 - len(_HEAD) - 4) + _HEAD + CUT_PASSWORD + "@db.internal/app"


def _no_fragment(blob: str) -> None:
    assert "Zq9x" not in blob, blob[-200:]


async def test_error_text_is_redacted_before_it_is_cut(make_loop: Any) -> None:
    """A cut first would leave ``…://app:Zq9x`` — no ``@`` left to recognise the DSN by."""
    policy = LLMRetryPolicy(max_attempts=2, backoff_initial=0.0, backoff_max=0.0, total_timeout=None)
    llm = ScriptedLLM([ScriptedLLM.error(ConnectionError(CUT_ECHO))] * 2)
    loop = make_loop(llm=llm, config=AgentLoopConfig(retry_policy=policy))
    seen: list[str] = []
    loop.event_bus.subscribe(None, lambda event: seen.append(f"{event.type} {event.payload!r}"))
    sid = await loop.new_session()
    result = await loop.send("hi", sid)
    assert result.status == "degraded"
    assert {"llm_retry_attempted", "llm_degraded"} <= {s.split()[0] for s in seen}, seen
    _no_fragment("\n".join(seen))
    _no_fragment(result.final_text)


class _LeakyProjector:
    async def project(self, **_: Any) -> Any:
        raise RuntimeError(ECHOED)


async def test_a_failing_projector_is_logged_redacted(make_loop: Any) -> None:
    loop = make_loop(
        llm=ScriptedLLM([ScriptedLLM.text("ok")]),
        config=AgentLoopConfig(runtime_projectors=(_LeakyProjector(),)),
    )
    seen: list[str] = []
    loop.event_bus.subscribe("system_log", lambda event: seen.append(repr(event.payload)))
    sid = await loop.new_session()
    assert (await loop.send("hi", sid)).status == "completed"
    assert any("401 Unauthorized" in s for s in seen)
    _clean("\n".join(seen))


async def test_a_failed_sub_agent_is_reported_to_the_parent_redacted(make_loop: Any) -> None:
    from power_loop.agents import register_spawn_agent

    spec = {"name": "child", "system_prompt": "CHILD", "tools": [], "max_rounds": 2}

    def responder(request: Any) -> Any:
        if (request.system_prompt or "").startswith("CHILD"):
            raise ConnectionError(ECHOED)  # no retry policy: the child's send raises
        if request.messages[-1]["role"] == "tool":
            return ScriptedLLM.text("parent done")
        return ScriptedLLM.tool_call("run_agent", {"spec": spec, "input": "go"})

    registry = make_tools()
    register_spawn_agent(registry)
    loop = make_loop(llm=ScriptedLLM(responder=responder), tool_registry=registry)
    sid = await loop.new_session()
    assert (await loop.send("delegate", sid)).final_text == "parent done"
    history = json.dumps(await loop.get_messages(sid), default=str)
    assert "sub-agent failed: ConnectionError" in history
    _clean(history)
