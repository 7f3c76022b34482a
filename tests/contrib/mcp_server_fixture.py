"""A tiny, real stdio MCP server for the MCP client tests (run as ``python mcp_server_fixture.py``).

Built on the installed ``mcp`` SDK's low-level ``Server`` so the tests control the exact tool
listing, including a deliberately loose input schema that a strict validator would reject.

Tools:
- ``add(a, b)``            returns the sum as text (``required: [a, b]``)
- ``fail(reason)``         returns an ``isError`` result carrying ``reason``
- ``loose.echo``           a dotted name (not provider-legal) with a malformed schema; echoes its args
- ``pid``                  returns the server's process id (lets tests kill the server mid-session)
- ``sleep(seconds)``       sleeps, then answers (for timeout tests)
- ``picture``              returns a text block plus an image block
- ``where``                the server's working directory and ``$POWER_LOOP_MCP_TEST``, as JSON
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(
        name="add",
        description="Add two integers.",
        input_schema={
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    ),
    types.Tool(
        name="fail",
        description="Always fails with the given reason.",
        input_schema={"type": "object", "properties": {"reason": {"type": "string"}}},
    ),
    types.Tool(
        name="loose.echo",
        description="Echo the arguments back (its schema is malformed on purpose).",
        input_schema={"type": "object", "properties": {"text": {"type": "frobnicate"}}, "required": ["text"]},
    ),
    types.Tool(name="pid", description="The server's process id.", input_schema={"type": "object"}),
    types.Tool(
        name="sleep",
        description="Sleep for a while, then answer.",
        input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
    ),
    types.Tool(name="picture", description="A caption and an image.", input_schema={"type": "object"}),
    types.Tool(
        name="where", description="Working directory and test variable.", input_schema={"type": "object"}
    ),
]


def _text(text: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=is_error)


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    args = params.arguments or {}
    if params.name == "add":
        return _text(str(int(args["a"]) + int(args["b"])))
    if params.name == "fail":
        return _text(f"failed on purpose: {args.get('reason', 'no reason')}", is_error=True)
    if params.name == "loose.echo":
        return _text(json.dumps(args, sort_keys=True))
    if params.name == "pid":
        return _text(str(os.getpid()))
    if params.name == "sleep":
        await anyio.sleep(float(args.get("seconds", 1)))
        return _text("woke up")
    if params.name == "picture":
        return types.CallToolResult(
            content=[
                types.TextContent(text="a red dot"),
                types.ImageContent(data="iVBORw0KGgo=", mime_type="image/png"),
            ]
        )
    if params.name == "where":
        return _text(json.dumps({"cwd": os.getcwd(), "var": os.environ.get("POWER_LOOP_MCP_TEST")}))
    return _text(f"unknown tool {params.name}", is_error=True)


server: Server[Any] = Server("power-loop-test-fixture", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    if "--crash-on-start" in sys.argv:
        sys.exit(3)
    anyio.run(main)
