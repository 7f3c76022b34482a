from __future__ import annotations

from typing import Any, Literal, Optional

import pytest

from power_loop.errors import ConfigError, ToolValidationError
from power_loop.tools import ToolRegistry


def test_schema_derived_from_signature_and_docstring() -> None:
    reg = ToolRegistry()

    @reg.tool
    def search(
        query: str,
        limit: int = 10,
        ratio: float = 0.5,
        exact: bool = False,
        tags: list[str] | None = None,
        mode: Literal["fast", "deep"] = "fast",
        filters: dict[str, int] | None = None,
        note: Optional[str] = None,  # noqa: UP045 - the Optional spelling must work too
    ) -> str:
        """Search the index.

        Returns matching lines.
        """
        return f"{query}:{limit}:{mode}"

    d = reg.get("search").definition  # type: ignore[union-attr]
    assert d.description == "Search the index.\n\nReturns matching lines."
    assert d.input_schema == {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "default": 10},
            "ratio": {"type": "number", "default": 0.5},
            "exact": {"type": "boolean", "default": False},
            "tags": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "default": None,
            },
            "mode": {"enum": ["fast", "deep"], "type": "string", "default": "fast"},
            "filters": {
                "anyOf": [{"type": "object", "additionalProperties": {"type": "integer"}}, {"type": "null"}],
                "default": None,
            },
            "note": {"type": ["string", "null"], "default": None},
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    assert search("x") == "x:10:fast"  # the decorator returns the function unchanged
    assert reg.invoke("search", {"query": "q", "limit": 3, "mode": "deep"}) == "q:3:deep"
    with pytest.raises(ToolValidationError, match="must be one of"):
        reg.invoke("search", {"query": "q", "mode": "slow"})
    with pytest.raises(ToolValidationError, match='unexpected property "bogus"'):
        reg.invoke("search", {"query": "q", "bogus": 1})


def test_configured_decorator_overrides() -> None:
    reg = ToolRegistry()
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}

    @reg.tool(name="double_it", description="Double n.", schema=schema)
    def double(n: int) -> int:
        return n * 2

    d = reg.get("double_it").definition  # type: ignore[union-attr]
    assert d.description == "Double n." and d.input_schema is schema
    assert reg.invoke("double_it", {"n": 4}) == 8
    with pytest.raises(ToolValidationError, match=">= 1"):
        reg.invoke("double_it", {"n": 0})


def test_kwargs_allow_extra_properties_and_untyped_params_accept_anything() -> None:
    reg = ToolRegistry()

    @reg.tool(description="Anything goes.")
    def loose(value, **extra: Any) -> str:  # type: ignore[no-untyped-def]
        return f"{value!r} {sorted(extra)}"

    d = reg.get("loose").definition  # type: ignore[union-attr]
    assert d.input_schema == {"type": "object", "properties": {"value": {}}, "required": ["value"]}
    assert reg.invoke("loose", {"value": [1], "z": 2}) == "[1] ['z']"


def test_tuple_and_set_annotations() -> None:
    reg = ToolRegistry()

    @reg.tool(description="Pairs.")
    def pairs(point: tuple[int, str], ids: set[int], rest: tuple[float, ...] = ()) -> str:
        return "ok"

    props = reg.get("pairs").definition.input_schema["properties"]  # type: ignore[union-attr]
    assert props["point"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
    }
    assert props["ids"] == {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    assert props["rest"] == {"type": "array", "items": {"type": "number"}}
    assert reg.validate("pairs", {"point": [1, "a"], "ids": [1, 2]}) is None
    assert reg.validate("pairs", {"point": [1], "ids": [1, 1]}) is not None


async def test_async_function_decorated() -> None:
    reg = ToolRegistry()

    @reg.tool(description="Async tool.")
    async def slow(x: int) -> int:
        return x + 1

    assert reg.get("slow").is_async  # type: ignore[union-attr]
    assert await reg.invoke_async("slow", {"x": 1}) == 2


def test_missing_description_is_an_error() -> None:
    reg = ToolRegistry()
    with pytest.raises(ConfigError, match="needs a description"):

        @reg.tool
        def undocumented(x: int) -> int:
            return x


class Custom:
    pass


def test_unsupported_annotation_is_an_error() -> None:
    reg = ToolRegistry()
    with pytest.raises(ConfigError, match=r"parameter 'c'.*schema="):

        @reg.tool(description="d")
        def uses_custom(c: Custom) -> None:
            return None

    assert not reg.has("uses_custom")


def test_unresolvable_annotation_is_an_error() -> None:
    reg = ToolRegistry()
    with pytest.raises(ConfigError, match="cannot resolve type annotations"):

        @reg.tool(description="d")
        def uses_unknown(c: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
            return None


def test_positional_only_parameters_rejected() -> None:
    reg = ToolRegistry()
    with pytest.raises(ConfigError, match="positional-only"):

        @reg.tool(description="d")
        def pos(a: int, /) -> int:
            return a
