"""Model capabilities: declare what a model accepts, or probe it, and let the loop respect it.

`ModelCapabilities` (vision, documents, tools, structured_output, ...) is declared on a provider
config (`capabilities=`); `probe_capabilities(llm)` finds out with one tiny request per check. A loop
whose model lacks a capability refuses such a send before any request (`ModelCapabilityError`).

Run it::

    python examples/18_capabilities.py
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from power_loop import (
    LLMRequest,
    ModelCapabilities,
    ModelCapabilityError,
    StatefulAgentLoop,
    attachment,
    probe_capabilities,
)
from power_loop.testing import ScriptedLLM

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="
)


class BadRequest(Exception):
    """What a provider SDK raises for a request shape the server refuses (HTTP 400)."""

    status_code = 400


def text_only_server(request: LLMRequest) -> Any:
    """A model server that refuses images but answers everything else."""
    for message in request.messages:
        if isinstance(message["content"], list) and any(p["type"] == "image_url" for p in message["content"]):
            return ScriptedLLM.error(BadRequest("image_url is not supported by this model"))
    return ScriptedLLM.text("ok")


async def main() -> None:
    declared = ModelCapabilities(max_context=8192)  # every flag on by default
    probed = await probe_capabilities(ScriptedLLM(responder=text_only_server, capabilities=declared))
    print(f"declared: vision={declared.vision} tools={declared.tools}")
    print(
        f"probed:   vision={probed.vision} tools={probed.tools} structured_output={probed.structured_output}"
    )
    assert probed.vision is False and probed.tools is True

    # Pass the result as `capabilities=` of LLMProviderConfig; a scripted model takes it directly.
    llm = ScriptedLLM([ScriptedLLM.text("unused")], capabilities=probed)
    async with StatefulAgentLoop(llm=llm, dsn=":memory:") as loop:
        sid = await loop.new_session()
        message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, attachment(PIXEL)]}
        try:
            await loop.send(message, sid)
        except ModelCapabilityError as exc:
            print(f"refused before any request: {exc.code}: {exc}")
        assert llm.requests == []  # the model was never called


if __name__ == "__main__":
    asyncio.run(main())
