"""Vision: an image in a user message, a model looking at a workspace image with ``view_image``,
deduplicated attachment storage, and a model without vision refused before any request.

Runs offline with a scripted model. Swap in `create_llm_service_from_env()` for a real provider
(``capabilities=ModelCapabilities(...)`` on its config declares what the model takes).

Run it::

    python examples/19_vision.py
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

from power_loop import (
    AgentLoopConfig,
    ModelCapabilities,
    ModelCapabilityError,
    StatefulAgentLoop,
    ToolRegistry,
    attachment,
)
from power_loop.testing import ScriptedLLM
from power_loop.tools import register_view_image_tool

# A 1x1 PNG; any PNG/JPEG/GIF/WebP file or bytes work the same way.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)


async def main(work: Path) -> None:
    (work / "chart.png").write_bytes(PNG)
    tools = ToolRegistry()
    register_view_image_tool(tools, work)
    llm = ScriptedLLM(
        [
            ScriptedLLM.text("A single transparent pixel."),
            ScriptedLLM.tool_call("view_image", {"path": "chart.png"}),
            ScriptedLLM.text("chart.png is the same pixel."),
        ]
    )
    config = AgentLoopConfig(image_retention_rounds=4)
    async with StatefulAgentLoop(
        llm=llm, dsn=str(work / "vision.db"), tool_registry=tools, config=config
    ) as loop:
        sid = await loop.new_session()
        message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, attachment(PNG)]}
        print("answer:", (await loop.send(message, sid)).final_text)
        print("answer:", (await loop.send("Now look at chart.png", sid)).final_text)
        tool_result = next(m for m in llm.requests[-1].messages if m["role"] == "tool")
        print("tool result parts:", [p["type"] for p in tool_result["content"]])

        store = await loop.ensure_store()
        rows = await store.db.fetchall(
            f"SELECT hash, size FROM {store.t['attachments']} WHERE session_id = ?", (sid,)
        )
        print(f"attachments stored: {len(rows)} (the same image twice is stored once)")
        assert len(rows) == 1

    blind = ScriptedLLM(["never sent"], capabilities=ModelCapabilities(vision=False))
    async with StatefulAgentLoop(llm=blind, dsn=str(work / "blind.db")) as loop:
        sid = await loop.new_session()
        try:
            await loop.send({"role": "user", "content": [attachment(PNG)]}, sid)
        except ModelCapabilityError as exc:
            print(f"refused before any request ({exc.code}): requests sent = {len(blind.requests)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="vision-") as tmp:
        asyncio.run(main(Path(tmp)))
