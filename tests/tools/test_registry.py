from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from power_loop.errors import AsyncToolInSyncContext, ConfigError, ToolNotFound, ToolValidationError
from power_loop.tools import RegisteredTool, ToolDefinition, ToolRegistry, build_registry

ECHO = ToolDefinition(
    name="echo",
    description="Echo text.",
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "additionalProperties": False,
    },
    required_params=("text",),
)


def echo(text: str) -> str:
    return text


def make(name: str) -> ToolDefinition:
    return ToolDefinition(name=name, description=f"tool {name}")


def test_register_lookup_and_order() -> None:
    reg = ToolRegistry()
    for n in ("b", "a", "c"):
        reg.register(make(n), lambda n=n: n)
    assert reg.names() == ["b", "a", "c"]
    assert [d.name for d in reg.definitions()] == ["b", "a", "c"]
    assert reg.has("a") and not reg.has("zz")
    entry = reg.get("a")
    assert isinstance(entry, RegisteredTool) and entry.definition.name == "a" and not entry.is_async
    assert reg.get("zz") is None
    assert len(reg) == 3 and "c" in reg


def test_duplicate_raises_value_error_unless_overwrite() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    with pytest.raises(ConfigError, match="Tool already registered: echo") as info:
        reg.register(ECHO, lambda text: "other")
    assert isinstance(info.value, ValueError)
    assert reg.invoke("echo", {"text": "x"}) == "x"
    reg.register(ECHO, lambda text: text.upper(), overwrite=True)
    assert reg.invoke("echo", {"text": "x"}) == "X"


def test_register_rejects_bad_inputs_and_bad_schema() -> None:
    reg = ToolRegistry()
    with pytest.raises(ConfigError):
        reg.register({"name": "x"}, echo)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not callable"):
        reg.register(ECHO, "nope")  # type: ignore[arg-type]
    bad = ToolDefinition(
        name="bad", description="", input_schema={"type": "object", "properties": {"a": {"type": 7}}}
    )
    with pytest.raises(ConfigError, match="invalid JSON Schema"):
        reg.register(bad, echo)
    assert not reg.has("bad")


def test_unregister_is_silent_when_absent() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    reg.unregister("echo")
    reg.unregister("echo")
    assert reg.names() == []


def test_subset_shares_handlers_and_ignores_unknown() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    reg.register(make("other"), lambda: 1)
    sub = reg.subset(["echo", "missing"])
    assert sub.names() == ["echo"]
    assert sub.get("echo") is reg.get("echo")
    sub.unregister("echo")
    assert reg.has("echo")  # independent membership


def test_to_openai_tools_cached_and_invalidated() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    first = reg.to_openai_tools()
    assert first == [ECHO.to_openai_tool()]
    assert first[0]["function"]["parameters"]["required"] == ["text"]
    assert reg.to_openai_tools()[0] is first[0]  # cached dicts reused
    first.append({"junk": True})  # callers get a copy of the list
    assert len(reg.to_openai_tools()) == 1
    reg.register(make("two"), lambda: 2)
    assert [t["function"]["name"] for t in reg.to_openai_tools()] == ["echo", "two"]
    reg.unregister("echo")
    assert [t["function"]["name"] for t in reg.to_openai_tools()] == ["two"]


def test_validate_messages() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    assert reg.validate("echo", {"text": "hi"}) is None
    assert reg.validate("nope", {}) == "Unknown tool: nope"
    message = reg.validate("echo", {"text": 3, "extra": 1})
    assert message is not None
    assert "$.text: expected string, got integer" in message
    assert 'unexpected property "extra"' in message
    assert 'missing required property "text"' in (reg.validate("echo", {}) or "")


def test_invoke_errors() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    with pytest.raises(ToolNotFound) as nf:
        reg.invoke("missing", {})
    assert nf.value.code == "tool.not_found"
    with pytest.raises(ToolValidationError) as bad:
        reg.invoke("echo", {"text": 1})
    assert bad.value.tool_name == "echo" and "expected string" in bad.value.message


async def _async_echo(text: str) -> str:
    return text


class AsyncCallable:
    async def __call__(self, text: str) -> str:
        return "obj:" + text


def test_invoke_refuses_async_handlers() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, _async_echo)
    reg.register(ToolDefinition(name="obj", description="", input_schema=ECHO.input_schema), AsyncCallable())
    assert reg.get("echo").is_async and reg.get("obj").is_async  # type: ignore[union-attr]
    for name in ("echo", "obj"):
        with pytest.raises(AsyncToolInSyncContext) as info:
            reg.invoke(name, {"text": "x"})
        assert isinstance(info.value, TypeError) and info.value.code == "tool.async_in_sync"


def test_invoke_refuses_sync_handler_returning_awaitable() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, lambda text: _async_echo(text))
    with pytest.raises(AsyncToolInSyncContext):
        reg.invoke("echo", {"text": "x"})


async def test_invoke_async_awaits_async_handlers_and_awaitable_results() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, _async_echo)
    reg.register(ToolDefinition(name="obj", description="", input_schema=ECHO.input_schema), AsyncCallable())
    reg.register(
        ToolDefinition(name="lazy", description="", input_schema=ECHO.input_schema),
        lambda text: _async_echo(text),
    )
    assert await reg.invoke_async("echo", {"text": "a"}) == "a"
    assert await reg.invoke_async("obj", {"text": "b"}) == "obj:b"
    assert await reg.invoke_async("lazy", {"text": "c"}) == "c"
    with pytest.raises(ToolValidationError):
        await reg.invoke_async("echo", {})


async def test_sync_handler_runs_off_the_event_loop_thread() -> None:
    seen: list[int] = []

    def where() -> str:
        seen.append(threading.get_ident())
        return "ok"

    reg = ToolRegistry()
    reg.register(make("where"), where)
    assert await reg.invoke_async("where", {}) == "ok"
    assert seen and seen[0] != threading.get_ident()


async def test_async_handler_runs_on_the_loop_thread() -> None:
    seen: list[int] = []

    async def where() -> str:
        seen.append(threading.get_ident())
        return "ok"

    reg = ToolRegistry()
    reg.register(make("where"), where)
    await reg.invoke_async("where", {})
    assert seen == [threading.get_ident()]


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def test_contextvars_propagate_into_sync_handlers() -> None:
    reg = ToolRegistry()
    reg.register(make("rid"), lambda: REQUEST_ID.get())
    token = REQUEST_ID.set("req-42")
    try:
        assert await reg.invoke_async("rid", {}) == "req-42"
    finally:
        REQUEST_ID.reset(token)


def test_dict_calling_convention_detected_at_registration() -> None:
    calls: list[Any] = []

    def takes_dict(args: dict[str, Any]) -> str:
        calls.append(args)
        return f"got {sorted(args)}"

    reg = ToolRegistry()
    reg.register(ECHO, takes_dict)
    assert reg.get("echo").call_with_dict  # type: ignore[union-attr]
    assert reg.invoke("echo", {"text": "x"}) == "got ['text']"
    assert calls == [{"text": "x"}]


def test_single_param_named_like_an_argument_gets_keywords() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, echo)
    assert not reg.get("echo").call_with_dict  # type: ignore[union-attr]
    assert reg.invoke("echo", {"text": "kw"}) == "kw"


def test_single_optional_param_gets_keywords() -> None:
    def flag(verbose: bool = False) -> str:
        return f"verbose={verbose}"

    reg = ToolRegistry()
    reg.register(make("flag"), flag)
    assert reg.invoke("flag", {}) == "verbose=False"


def test_positional_only_param_and_kwargs_handlers() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, lambda text, /: f"dict? {text!r}")  # positional-only: can only take the dict
    assert reg.invoke("echo", {"text": "a"}) == "dict? {'text': 'a'}"
    reg.register(ECHO, lambda args, **kw: f"kw {args!r} {kw!r}", overwrite=True)
    with pytest.raises(TypeError):  # **kwargs means keyword calling; the missing 'args' is the handler's bug
        reg.invoke("echo", {"text": "a"})


def test_type_error_inside_handler_is_not_retried() -> None:
    calls: list[Any] = []

    def broken(text: str) -> str:
        calls.append(text)
        raise TypeError("bug inside the handler")

    reg = ToolRegistry()
    reg.register(ECHO, broken)
    with pytest.raises(TypeError, match="bug inside"):
        reg.invoke("echo", {"text": "x"})
    assert calls == ["x"]  # called exactly once


def test_build_registry() -> None:
    reg = build_registry([ECHO, make("n")], {"echo": echo, "n": lambda: 1})
    assert reg.names() == ["echo", "n"]
    with pytest.raises(ConfigError, match="no handler given for tool 'n'"):
        build_registry([make("n")], {})


async def test_concurrent_invocations_do_not_interfere() -> None:
    reg = ToolRegistry()
    reg.register(ECHO, _async_echo)
    reg.register(ToolDefinition(name="sync", description="", input_schema=ECHO.input_schema), echo)
    results = await asyncio.gather(
        *(reg.invoke_async("echo" if i % 2 else "sync", {"text": str(i)}) for i in range(20))
    )
    assert results == [str(i) for i in range(20)]


def test_a_reserved_name_keeps_its_place_but_is_no_tool_until_registered() -> None:
    registry = ToolRegistry()
    registry.register(make("a"), echo)
    registry.reserve("b")
    registry.register(make("c"), echo)
    registry.reserve("a")  # a known name: no effect
    assert registry.names() == ["a", "c"] and registry.reserved() == ["b"] and len(registry) == 2
    assert "b" not in registry and not registry.has("b") and registry.get("b") is None
    assert [t["function"]["name"] for t in registry.to_openai_tools()] == ["a", "c"]
    assert [d.name for d in registry.definitions()] == ["a", "c"]
    with pytest.raises(ToolNotFound):
        registry.invoke("b", {"text": "x"})
    child = registry.subset(["b", "c"])
    assert child.names() == ["c"] and child.reserved() == ["b"]

    registry.register(make("b"), echo)  # fills the place, no overwrite= needed
    assert registry.names() == ["a", "b", "c"] and registry.reserved() == [] and len(registry) == 3
    assert [t["function"]["name"] for t in registry.to_openai_tools()] == ["a", "b", "c"]

    child.unregister("b")  # drops the reservation
    assert child.reserved() == [] and child.names() == ["c"] and len(child) == 1
