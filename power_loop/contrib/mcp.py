"""MCP (Model Context Protocol) tools: run an MCP server and expose its tools to the loop.

* :class:`StdioMCPClient` starts an MCP server as a subprocess, speaks MCP over its stdin/stdout
  (through the official ``mcp`` SDK, imported lazily: ``pip install mcp``, or the ``mcp`` extra of a checkout) and
  implements :class:`MCPToolSource`.
* :func:`register_mcp_tools` lists a source's tools and registers each one in a
  :class:`~power_loop.tools.ToolRegistry`, so the model calls them like any other tool.

Failures reach the model as failed tool results, never as a crashed loop: a tool reporting
``isError`` raises :class:`~power_loop.errors.MCPToolError` from its handler; a server that died,
hung past ``timeout_s`` or answered with a protocol error raises :class:`~power_loop.errors.MCPError`.

Loose schemas: MCP servers often ship input schemas that a strict JSON-Schema validator rejects
(unknown ``type`` names, broken regexes, a non-object root). Rather than failing the whole
registration, such a tool is registered with a permissive schema that keeps its property names,
descriptions and ``required`` list, and a warning is logged on ``power_loop.contrib.mcp``; the
server still validates the arguments itself. See ``docs/mcp.md``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ..errors import ConfigError, MCPError, MCPToolError, MissingDependencyError
from ..tools import ToolDefinition, ToolRegistry, compile_schema

if TYPE_CHECKING:
    from mcp import ClientSession

__all__ = [
    "MCPToolSource",
    "McpToolSpec",
    "StdioMCPClient",
    "mcp_tool_name",
    "normalise_input_schema",
    "register_mcp_tools",
    "render_tool_content",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_NAME_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME_LEN = 64
#: Extra time our own watchdog grants on top of the SDK's per-request timeout before giving up.
_WATCHDOG_GRACE_S = 5.0
#: The SDK's stdio shutdown is bounded (stdin close, 2 s grace, SIGTERM, 2 s, SIGKILL); wait a bit longer.
_CLOSE_TIMEOUT_S = 10.0
# Starting a server process (often through npx or uvx) and its handshake, unless the caller says otherwise.
_DEFAULT_CONNECT_TIMEOUT_S = 30.0
#: JSON-RPC codes the SDK uses for a dead connection and for an expired request timeout.
_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001


def _object_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class McpToolSpec:
    """One tool as an MCP server lists it: its remote name, description and JSON-Schema for arguments."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=_object_schema)


@runtime_checkable
class MCPToolSource(Protocol):
    """Anything that can list MCP tools and call them; :class:`StdioMCPClient` is the built-in one.

    ``call_tool`` returns the text for the model and raises (ideally :class:`MCPToolError`) when the
    tool failed; the exception text is what the model sees.
    """

    async def list_tools(self) -> list[McpToolSpec]: ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str: ...


def _import_mcp() -> Any:
    try:
        import mcp
    except ImportError as exc:
        raise MissingDependencyError("mcp", "mcp", "MCP tools") from exc
    return mcp


# --- turning MCP results into text ----------------------------------------------------------------


def _describe_block(block: Any) -> str:
    """One content block as text: text verbatim, anything else as a short bracketed description."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(getattr(block, "text", ""))
    if kind in ("image", "audio"):
        data = getattr(block, "data", "") or ""
        mime = getattr(block, "mime_type", None) or "unknown type"
        return f"[{kind}: {mime}, {len(data)} base64 chars]"
    if kind == "resource_link":
        name = getattr(block, "name", None) or "resource"
        return f"[resource link: {name} <{getattr(block, 'uri', '')}>]"
    if kind == "resource":
        resource = getattr(block, "resource", None)
        uri = getattr(resource, "uri", "")
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return f"[resource {uri}]\n{text}"
        mime = getattr(resource, "mime_type", None) or "binary"
        return f"[resource {uri}: {mime}, {len(getattr(resource, 'blob', '') or '')} base64 chars]"
    return f"[{kind or 'unknown'} content]"


def render_tool_content(content: Sequence[Any], structured: Any = None) -> str:
    """The model-facing text of an MCP tool result.

    Text blocks are joined with newlines; images, audio and resources are described in brackets.
    A result with no content blocks but ``structuredContent`` renders that value as JSON.
    """
    if not content and structured is not None:
        return json.dumps(structured, ensure_ascii=False, default=str)
    return "\n".join(_describe_block(block) for block in content)


# --- tool names and schemas -----------------------------------------------------------------------


def mcp_tool_name(name: str, prefix: str = "") -> str:
    """The local tool name for MCP tool ``name``: ``prefix + name`` with every character outside
    ``[a-zA-Z0-9_-]`` replaced by ``_`` and cut to 64 characters (what LLM providers accept)."""
    return _NAME_BAD_CHARS.sub("_", f"{prefix}{name}")[:_MAX_NAME_LEN] or "mcp_tool"


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while True:
        suffix = f"_{n}"
        candidate = name[: _MAX_NAME_LEN - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _compile_problem(schema: Any) -> str | None:
    try:
        compile_schema(schema)
    except ConfigError as exc:
        return str(exc)
    return None


def normalise_input_schema(schema: Any) -> tuple[dict[str, Any], str | None]:
    """``(schema, problem)``: the schema to register for an MCP tool, and why it was loosened.

    A schema our validator accepts is kept as is (``"type": "object"`` added when missing). Otherwise
    ``problem`` explains the defect and the returned schema is permissive: an object whose property
    names, descriptions and ``required`` list are kept, each property's own schema kept only if it is
    valid on its own. Arguments are then checked less strictly here, and fully by the server.
    """
    if not isinstance(schema, Mapping):
        return _object_schema(), f"input schema is {type(schema).__name__}, not a JSON object"
    candidate = copy.deepcopy(dict(schema))
    candidate.setdefault("type", "object")
    if candidate["type"] != "object":
        problem: str | None = f"the arguments schema must have type 'object', got {candidate['type']!r}"
    else:
        problem = _compile_problem(candidate)
    if problem is None:
        return candidate, None
    properties = candidate.get("properties")
    loose: dict[str, Any] = {}
    if isinstance(properties, Mapping):
        for prop, sub in properties.items():
            if not isinstance(prop, str):
                continue
            if _compile_problem(sub) is None:
                loose[prop] = sub
            elif isinstance(sub, Mapping) and isinstance(sub.get("description"), str):
                loose[prop] = {"description": sub["description"]}
            else:
                loose[prop] = {}
    fallback: dict[str, Any] = {"type": "object", "properties": loose}
    required = candidate.get("required")
    if isinstance(required, list):
        names = [r for r in required if isinstance(r, str)]
        if names:
            fallback["required"] = list(dict.fromkeys(names))
    if _compile_problem(fallback) is not None:  # e.g. a kept sub-schema with an unresolvable $ref
        fallback["properties"] = {prop: {} for prop in loose}
    return fallback, problem


def _make_handler(source: MCPToolSource, remote_name: str) -> Callable[[dict[str, Any]], Awaitable[str]]:
    # Positional-only, so the registry passes the arguments as one dict whatever the tool's parameter
    # names are (an MCP tool may well have a parameter called "arguments").
    async def call_mcp_tool(arguments: dict[str, Any], /) -> str:
        return await source.call_tool(remote_name, arguments)

    call_mcp_tool.__qualname__ = call_mcp_tool.__name__ = f"mcp:{remote_name}"
    return call_mcp_tool


async def register_mcp_tools(
    registry: ToolRegistry, source: MCPToolSource, *, prefix: str = "", overwrite: bool = False
) -> list[str]:
    """Register every tool of ``source`` in ``registry``; returns the local names, in listing order.

    Each local name is :func:`mcp_tool_name` of ``prefix + name`` (made unique within this call by a
    ``_2``, ``_3`` ... suffix if sanitising makes two names equal); calls are forwarded under the
    server's original name. The schema's ``required`` list is kept (and mirrored into
    ``ToolDefinition.required_params``). Schemas our validator rejects are loosened, with a logged
    warning, by :func:`normalise_input_schema`. All-or-nothing: if a name is already registered and
    ``overwrite`` is false, ``ConfigError`` is raised before anything is registered.
    """
    specs = await source.list_tools()
    planned: list[tuple[ToolDefinition, Callable[[dict[str, Any]], Awaitable[str]]]] = []
    taken: set[str] = set()
    for spec in specs:
        local = _unique_name(mcp_tool_name(spec.name, prefix), taken)
        taken.add(local)
        schema, problem = normalise_input_schema(spec.input_schema)
        if problem is not None:
            logger.warning(
                "MCP tool %r (registered as %r): input schema not usable as given (%s); "
                "registered with a permissive schema, the server validates the arguments",
                spec.name,
                local,
                problem,
            )
        required = tuple(r for r in schema.get("required", ()) if isinstance(r, str))
        definition = ToolDefinition(
            name=local,
            description=str(spec.description or f"MCP tool {spec.name}"),
            input_schema=schema,
            required_params=required,
        )
        planned.append((definition, _make_handler(source, spec.name)))
    if not overwrite:
        clashes = [d.name for d, _ in planned if d.name in registry]
        if clashes:
            raise ConfigError(
                f"MCP tools already registered: {', '.join(clashes)} "
                "(pass prefix= to namespace them, or overwrite=True to replace them)"
            )
    for definition, handler in planned:
        registry.register(definition, handler, overwrite=overwrite)
    return [d.name for d, _ in planned]


# --- the stdio client -----------------------------------------------------------------------------


def _describe_exception(exc: BaseException) -> str:
    """``Type: message`` of the first leaf of a (possibly nested) exception group."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not inner:
            return f"{type(exc).__name__}: {exc}"
        exc = inner[0]


class StdioMCPClient:
    """An MCP server run as a subprocess and spoken to over stdio; an :class:`MCPToolSource`.

    ``command``/``args`` start the server; ``env`` adds variables on top of the SDK's safe default
    environment (``PATH``, ``HOME``, ...: the parent's secrets are not inherited); ``cwd`` is its
    working directory. ``timeout_s`` bounds each tool call; ``connect_timeout_s`` bounds starting the
    server, the handshake and listing its tools (default: ``timeout_s``, but at least 30 s — starting a
    process on a busy host, or through ``npx``, takes far longer than answering a call). ``name`` labels
    the server
    in errors and logs (default: the command's file name; ``args`` are never shown, they may hold
    tokens). Use ``async with``, or ``await connect()`` ... ``await aclose()``: closing stops the
    server (stdin closed, then SIGTERM, then SIGKILL of its process group) and reaps it. The client
    may be used from any task of the event loop it was connected on.
    """

    def __init__(
        self,
        command: str,
        args: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(command, str) or not command:
            raise ConfigError("StdioMCPClient needs the server command, e.g. StdioMCPClient('npx', [...])")
        if isinstance(args, (str, bytes)):
            raise ConfigError("StdioMCPClient args must be a list of strings, not one string")
        if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or not timeout_s > 0:
            raise ConfigError(f"StdioMCPClient timeout_s must be a positive number, got {timeout_s!r}")
        if connect_timeout_s is not None and (
            not isinstance(connect_timeout_s, (int, float))
            or isinstance(connect_timeout_s, bool)
            or not connect_timeout_s > 0
        ):
            raise ConfigError(
                f"StdioMCPClient connect_timeout_s must be a positive number, got {connect_timeout_s!r}"
            )
        self.command = command
        self.args = [str(a) for a in args or ()]
        self.env = dict(env) if env is not None else None
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = (
            float(connect_timeout_s)
            if connect_timeout_s is not None
            else max(self.timeout_s, _DEFAULT_CONNECT_TIMEOUT_S)
        )
        self.name = name or os.path.basename(command) or command
        self._session: ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._session is not None else "not connected"
        return f"StdioMCPClient({self.name!r}, {state})"

    @property
    def connected(self) -> bool:
        """True between a successful :meth:`connect` and :meth:`aclose` while the connection is up."""
        return (
            self._session is not None
            and self._runner is not None
            and not self._runner.done()
            and not (self._stop is not None and self._stop.is_set())
        )

    async def __aenter__(self) -> StdioMCPClient:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def connect(self) -> StdioMCPClient:
        """Start the server and complete the MCP handshake; returns ``self``. Idempotent.

        Raises :class:`MCPError` if the server cannot be started, exits, or does not finish the
        handshake within ``connect_timeout_s`` (the process is cleaned up in every case).
        """
        async with self._connect_lock:
            if self._closed:
                raise MCPError(self.name, "the client is closed; create a new StdioMCPClient")
            if self._runner is not None:
                return self
            _import_mcp()
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._runner = asyncio.create_task(self._run(ready, self._stop), name=f"mcp-stdio:{self.name}")
            try:
                await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout_s)
            except asyncio.TimeoutError:
                ready.cancel()  # nobody will read it now; _run must not leave an unretrieved exception in it
                await self._shutdown(cancel=True)
                raise MCPError(
                    self.name, f"did not complete the MCP handshake within {self.connect_timeout_s:g}s"
                ) from None
            except BaseException:
                ready.cancel()
                await self._shutdown(cancel=True)
                raise
            return self

    async def _run(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        """Own the SDK's context managers: their anyio task groups must be entered and exited by one
        task, so this task holds the connection open until :meth:`aclose` sets ``stop``."""
        from mcp import ClientSession, StdioServerParameters, stdio_client

        params = StdioServerParameters(command=self.command, args=self.args, env=self.env, cwd=self.cwd)
        try:
            async with stdio_client(params) as (read_stream, write_stream):
                async with ClientSession(
                    read_stream, write_stream, read_timeout_seconds=self.connect_timeout_s
                ) as session:
                    await session.initialize()
                    self._session = session
                    ready.set_result(None)
                    await stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(self._startup_error(exc))
            else:
                logger.warning(
                    "MCP server %r: connection ended with an error: %s", self.name, _describe_exception(exc)
                )
        finally:
            self._session = None

    def _startup_error(self, exc: BaseException) -> MCPError:
        sdk_error = _import_mcp().MCPError
        leaf = exc
        while getattr(leaf, "exceptions", None):
            leaf = leaf.exceptions[0]  # type: ignore[attr-defined]
        if isinstance(leaf, OSError):
            error = MCPError(self.name, f"could not start the server process: {_describe_exception(leaf)}")
        elif isinstance(leaf, sdk_error) and leaf.code == _CONNECTION_CLOSED:
            error = MCPError(self.name, "the server process exited or closed its stdout during the handshake")
        else:
            error = MCPError(self.name, f"the MCP handshake failed: {_describe_exception(leaf)}")
        error.__cause__ = exc
        return error

    async def _shutdown(self, *, cancel: bool = False) -> None:
        """Stop the owner task (which stops the server). ``cancel`` interrupts a handshake in progress;
        the SDK shields its process teardown from cancellation, so the server is still reaped."""
        runner, self._runner = self._runner, None
        if self._stop is not None:
            self._stop.set()
        if runner is None:
            return
        if cancel:
            runner.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(runner), _CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            runner.cancel()
            logger.warning(
                "MCP server %r did not shut down within %gs; cancelled", self.name, _CLOSE_TIMEOUT_S
            )
        except asyncio.CancelledError:
            if not runner.cancelled():
                raise  # our caller is being cancelled, not just the runner
        except Exception:  # already reported through `ready` or logged by _run
            pass

    async def aclose(self) -> None:
        """Stop the server process and release everything. Idempotent; the client cannot reconnect."""
        self._closed = True
        await self._shutdown()

    def _require_session(self) -> ClientSession:
        session = self._session
        if session is None or not self.connected:
            if self._closed:
                raise MCPError(self.name, "the client is closed")
            if self._runner is None:
                raise MCPError(
                    self.name, "not connected: call `await client.connect()` (or use `async with`)"
                )
            raise MCPError(self.name, "the server process has exited; create a new client to restart it")
        return session

    async def _request(self, what: str, request: Awaitable[_T], timeout_s: float) -> _T:
        """Await one SDK request and translate every failure into :class:`MCPError`."""
        sdk_error = _import_mcp().MCPError
        try:
            # The SDK enforces `timeout_s` per request; this watchdog only guards against a stuck transport.
            return await asyncio.wait_for(request, timeout_s + _WATCHDOG_GRACE_S)
        except asyncio.TimeoutError:
            raise MCPError(self.name, f"{what}: no answer within {timeout_s:g}s") from None
        except sdk_error as exc:
            if exc.code == _CONNECTION_CLOSED:
                # The server is gone: let the owner task wind the transport down and reap the process now.
                if self._stop is not None:
                    self._stop.set()
                message = f"{what}: the server process exited or closed its connection"
            elif exc.code == _REQUEST_TIMEOUT:
                message = f"{what}: no answer within {timeout_s:g}s"
            else:
                message = f"{what}: the server answered with error {exc.code}: {exc.message}"
            raise MCPError(self.name, message) from exc
        except Exception as exc:  # protocol-level surprises: malformed results, closed streams
            raise MCPError(self.name, f"{what} failed: {_describe_exception(exc)}") from exc

    async def list_tools(self) -> list[McpToolSpec]:
        """All tools the server offers (following pagination), as :class:`McpToolSpec`."""
        session = self._require_session()
        mcp = _import_mcp()
        specs: list[McpToolSpec] = []
        cursor: str | None = None
        while True:
            params = None if cursor is None else mcp.types.PaginatedRequestParams(cursor=cursor)
            listing = session.list_tools(params=params)  # under the session's connect_timeout_s
            result = await self._request("tools/list", listing, self.connect_timeout_s)
            for tool in result.tools:
                schema = tool.input_schema if isinstance(tool.input_schema, dict) else _object_schema()
                specs.append(McpToolSpec(tool.name, tool.description or "", schema))
            cursor = result.next_cursor
            if not cursor:
                return specs

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> str:
        """Call tool ``name`` and return its text (see :func:`render_tool_content`).

        Raises :class:`MCPToolError` when the tool reports ``isError`` (its text is the message) and
        :class:`MCPError` when the call could not be made or answered.
        """
        session = self._require_session()
        call = session.call_tool(name, dict(arguments or {}), read_timeout_seconds=self.timeout_s)
        result = await self._request(f"tools/call {name!r}", call, self.timeout_s)
        text = render_tool_content(result.content, result.structured_content)
        if result.is_error:
            raise MCPToolError(self.name, name, text)
        return text
