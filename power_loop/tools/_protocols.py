"""The call shapes of tool handlers and argument validators, as typing protocols.

Any callable works as a handler (``ToolRegistry.register`` takes it as it is); these protocols name
the published shapes for applications that annotate their own code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, runtime_checkable

from ._definition import ToolHandlerResult

__all__ = ["ToolArgsValidator", "ToolHandler"]


@runtime_checkable
class ToolHandler(Protocol):
    """A handler taking the arguments as one dict: ``handler(args) -> result`` (plain or async).

    The registry decides from the signature at registration: a single positional parameter that is
    not one of the tool's argument names gets the dict, any other handler gets ``handler(**args)``.
    """

    def __call__(
        self, args: dict[str, Any], /
    ) -> ToolHandlerResult | dict[str, Any] | str | Awaitable[ToolHandlerResult | dict[str, Any] | str]: ...


@runtime_checkable
class ToolArgsValidator(Protocol):
    """``(tool_name, args) -> error message or None`` (plain or async): extra checks of a call's arguments."""

    def __call__(self, tool_name: str, args: Mapping[str, Any], /) -> str | Awaitable[str | None] | None: ...
