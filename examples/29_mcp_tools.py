"""MCP tools: start an MCP server over stdio and let the agent call its tools.

Runs offline: this file is both the example and the MCP server it starts (``--serve``, built with the
official ``mcp`` SDK's ``MCPServer``). The model is scripted; swap in `create_llm_service_from_env()`
for a real one.

Run it (needs ``pip install mcp``)::

    python examples/29_mcp_tools.py
"""

from __future__ import annotations

import asyncio
import sys

from power_loop import StatefulAgentLoop, ToolRegistry
from power_loop.contrib.mcp import StdioMCPClient, register_mcp_tools
from power_loop.testing import ScriptedLLM


def serve() -> None:
    """The MCP server: two tools, one of which refuses bad input."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("unit-converter", log_level="WARNING")

    @server.tool()
    def km_to_miles(km: float) -> str:
        """Convert kilometres to miles."""
        return f"{km} km = {km * 0.621371:.2f} miles"

    @server.tool()
    def celsius_to_fahrenheit(celsius: float) -> str:
        """Convert degrees Celsius to Fahrenheit (refuses values below absolute zero)."""
        if celsius < -273.15:
            # ToolError's text reaches the client (other exceptions are hidden by the server).
            raise ToolError(f"{celsius} °C is below absolute zero")
        return f"{celsius} °C = {celsius * 9 / 5 + 32:.1f} °F"

    server.run("stdio")


async def main() -> None:
    registry = ToolRegistry()
    # The client starts the server process and stops (and reaps) it when the block ends.
    server = [__file__, "--serve"]
    async with StdioMCPClient(sys.executable, server, timeout_s=20, name="unit-converter") as mcp:
        names = await register_mcp_tools(registry, mcp, prefix="units_")
        print("registered MCP tools:", ", ".join(names))

        llm = ScriptedLLM(
            [
                ScriptedLLM.tool_calls([("units_km_to_miles", {"km": 42.195})]),
                ScriptedLLM.tool_calls([("units_celsius_to_fahrenheit", {"celsius": -300})]),
                ScriptedLLM.text("A marathon is about 26.22 miles; -300 °C is impossible."),
            ]
        )
        async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=registry) as loop:
            sid = await loop.new_session()
            result = await loop.send("How long is a marathon in miles, and what is -300 °C in °F?", sid)

        for message in llm.requests[2].messages:
            if message["role"] == "tool":
                print(f"tool {message['name']}: {message['content']}")
        print(f"{result.status}: {result.final_text}")
        assert "26.22 miles" in llm.requests[1].messages[-1]["content"]
        assert "absolute zero" in llm.requests[2].messages[-1]["content"]


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve()
    else:
        asyncio.run(main())
