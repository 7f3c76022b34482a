"""Execute one model tool call and turn every failure into a result the model can act on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..base import json_type_name, redact_secrets
from ..errors import (
    CancellationRequested,
    ConfigError,
    PowerLoopError,
    ToolNotFound,
    ToolResultError,
    ToolValidationError,
)
from ._definition import ToolHandlerResult
from ._human import HumanInputRequired
from ._pass_turn import TurnPassed
from ._registry import format_problems

if TYPE_CHECKING:
    from ._registry import ToolRegistry

__all__ = [
    "DEFAULT_MAX_RESULT_CHARS",
    "ToolOutcome",
    "execute_tool_call",
    "normalise_result",
    "truncate_output",
]

#: Tool results longer than this are cut (the published package's ``RESULT_MAX_CHARS``).
DEFAULT_MAX_RESULT_CHARS = 50_000
_MIN_RESULT_CHARS = 64
_MAX_NAMES_LISTED = 30
_JSON_CONTEXT = 40


@dataclass(slots=True)
class ToolOutcome:
    """The result of one tool call: what goes back to the model, and what hooks/events need.

    ``failed`` is True for bad arguments, unknown tools, handler exceptions, results that cannot be
    turned into text and ``ToolHandlerResult(ok=False)``; ``error`` keeps the handler's exception
    object when there was one. ``code`` is the stable error code of a refused call
    (``tool.not_found``, ``tool.invalid_args``, ``tool.invalid_result``) or of a handler's
    ``PowerLoopError``, else ``None``.
    """

    tool_call_id: str
    name: str
    args: dict[str, Any]
    output: str
    failed: bool
    error: BaseException | None = None
    code: str | None = None
    # Content parts a ToolHandlerResult attached (images): stored after the text in the tool message.
    parts: tuple[dict[str, Any], ...] = ()

    def to_message(self) -> dict[str, Any]:
        """The OpenAI-shape tool message: ``{"role": "tool", "tool_call_id", "name", "content"}``."""
        return {"role": "tool", "tool_call_id": self.tool_call_id, "name": self.name, "content": self.output}


def truncate_output(text: str, max_chars: int) -> str:
    """Cut ``text`` so that, with the ``"... (truncated, N total chars)"`` marker, it fits ``max_chars``."""
    if len(text) <= max_chars:
        return text
    suffix = f"\n... (truncated, {len(text)} total chars)"
    return text[: max(0, max_chars - len(suffix))] + suffix


def normalise_result(result: Any, tool_name: str = "tool") -> tuple[str, bool]:
    """``(content, failed)`` for a handler's return value: str as-is, ``ToolHandlerResult`` unwrapped,
    anything else JSON-encoded (``default=str`` for non-JSON types).

    Raises :class:`ToolResultError` when the value cannot be turned into text at all (its
    ``__str__`` raises, a number too large to print, nesting too deep).
    """
    if isinstance(result, str):
        return result, False
    try:
        if isinstance(result, ToolHandlerResult):
            content = result.content
            return (content if isinstance(content, str) else str(content)), not result.ok
        try:
            return json.dumps(result, ensure_ascii=False, default=str), False
        except (TypeError, ValueError):  # e.g. circular structures
            return str(result), False
    except Exception as exc:  # the value's own __str__/__repr__ is handler-controlled code
        raise ToolResultError(
            tool_name,
            f"the result ({type(result).__name__}) cannot be turned into text: {type(exc).__name__}",
        ) from exc


def _parse_arguments(name: str, raw: Any) -> tuple[dict[str, Any], str | None]:
    """``(args, error_message)``; on error ``args`` is ``{}``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None  # some providers send "" for tools without parameters
    if isinstance(raw, Mapping):
        return dict(raw), None
    if not isinstance(raw, str):
        return {}, (
            f"Error: the arguments for tool {name!r} must be a JSON object, got {type(raw).__name__}. "
            "Call the tool again with the arguments as one JSON object."
        )
    try:
        parsed = json.loads(raw)
    except RecursionError:
        return {}, (
            f"Error: the arguments for tool {name!r} are nested too deeply to parse. Call the tool "
            "again with a flatter JSON object."
        )
    except json.JSONDecodeError as exc:
        start = max(0, exc.pos - _JSON_CONTEXT)
        near = raw[start : exc.pos + _JSON_CONTEXT]
        return {}, (
            f"Error: the arguments for tool {name!r} are not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} (near {near!r}). Call the tool again with the arguments as one valid "
            'JSON object, e.g. {"param": "value"}: double-quoted keys and strings, escaped newlines '
            "and quotes, no trailing commas."
        )
    except ValueError as exc:  # e.g. an integer beyond the interpreter's digit limit
        return {}, (
            f"Error: the arguments for tool {name!r} could not be read ({exc}). Call the tool again "
            "with smaller values (send very large numbers as strings)."
        )
    if not isinstance(parsed, dict):
        return {}, (
            f"Error: the arguments for tool {name!r} must be a JSON object ({{...}}), got "
            f"{json_type_name(parsed)}. Call the tool again with the arguments as one JSON object."
        )
    return parsed, None


def _unknown_tool_message(name: str, registry: ToolRegistry) -> str:
    names = registry.names()
    if not names:
        return f"Error: unknown tool {name!r}: no tools are available in this conversation."
    listed = ", ".join(names[:_MAX_NAMES_LISTED])
    if len(names) > _MAX_NAMES_LISTED:
        listed += f" (and {len(names) - _MAX_NAMES_LISTED} more)"
    return f"Error: unknown tool {name!r}. Available tools: {listed}. Call one of these by its exact name."


async def execute_tool_call(
    registry: ToolRegistry,
    tool_call: Mapping[str, Any],
    *,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> ToolOutcome:
    """Run one OpenAI-shape tool call ``{"id", "type": "function", "function": {"name", "arguments"}}``.

    Never raises for model mistakes or handler errors: unparsable or non-object arguments, unknown
    tools, schema violations (the handler is then not called), handler exceptions and oversize
    results all come back as a ``ToolOutcome`` whose ``output`` tells the model what went wrong.
    Control flow does propagate: ``asyncio.CancelledError``, ``CancellationRequested``,
    ``HumanInputRequired`` (and other ``BaseException``s such as ``KeyboardInterrupt``).
    """
    if max_result_chars < _MIN_RESULT_CHARS:
        raise ConfigError(f"max_result_chars must be at least {_MIN_RESULT_CHARS}, got {max_result_chars}")
    call_id = str(tool_call.get("id") or "")
    function = tool_call.get("function")
    if not isinstance(function, Mapping):
        function = {}
    name = str(function.get("name") or "")
    args, parse_error = _parse_arguments(name, function.get("arguments"))

    def fail(message: str, code: str | None, error: BaseException | None = None) -> ToolOutcome:
        text = truncate_output(message, max_result_chars)
        return ToolOutcome(call_id, name, args, text, True, error, code)

    entry = registry.get(name)
    if entry is None:
        return fail(_unknown_tool_message(name, registry), ToolNotFound.code)
    if parse_error is not None:
        return fail(parse_error, ToolValidationError.code)
    problems = entry.check_args(args)
    if problems:
        return fail(format_problems(name, problems), ToolValidationError.code)
    try:
        result = await entry.call_async(args)
    except (HumanInputRequired, TurnPassed, CancellationRequested):
        raise
    except Exception as exc:
        # The message is stored as the tool result: a handler echoing a key or a DSN must not keep it there.
        code = exc.code if isinstance(exc, PowerLoopError) else None
        return fail(f"Error: {type(exc).__name__}: {redact_secrets(_describe(exc))}", code, exc)
    try:
        content, failed = normalise_result(result, name)
    except ToolResultError as exc:
        return fail(f"Error: {exc}", exc.code, exc)
    parts = tuple(result.parts) if isinstance(result, ToolHandlerResult) else ()
    return ToolOutcome(
        call_id, name, args, truncate_output(content, max_result_chars), failed, None, parts=parts
    )


def _describe(exc: BaseException) -> str:
    """``str(exc)``, which is handler-controlled code that may itself raise."""
    try:
        return str(exc)
    except Exception:
        return "(the exception cannot be printed)"
