"""Where tools run: `RuntimeEnv`, an unbound registry serving many workspaces, `safe_path`.

`create_default_tool_registry(bind=False)` fixes no workspace: each file-tool call uses the
workspace of the current `RuntimeEnv`, set per task with `runtime_env_context`. One loop and one
registry serve every user, each confined to their own directory.

Run it::

    python examples/07_runtime_env.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from power_loop import (
    LLMRequest,
    RuntimeEnv,
    RuntimeEnvError,
    StatefulAgentLoop,
    runtime_env_context,
    safe_path,
)
from power_loop.testing import ScriptedLLM
from power_loop.tools import create_default_tool_registry


def responder(request: LLMRequest) -> Any:
    """Write the user's text to notes.txt on their turn; answer once the tool has run."""
    last = request.messages[-1]
    if last["role"] == "user":
        return ScriptedLLM.tool_call("write_file", {"path": "notes.txt", "content": last["content"]})
    return ScriptedLLM.text("Saved.")


async def demo(root: Path) -> None:
    registry = create_default_tool_registry(include=["write_file", "read_file"], bind=False)
    async with StatefulAgentLoop(
        llm=ScriptedLLM(responder=responder), dsn=":memory:", tool_registry=registry
    ) as loop:
        for user in ("alice", "bob"):
            workspace = root / user
            workspace.mkdir()
            with runtime_env_context(RuntimeEnv(workspace_dir=str(workspace))):
                await loop.send(f"note from {user}", await loop.new_session())
                print(f"{user}: safe_path('notes.txt') ->", safe_path("notes.txt").relative_to(root))
                try:
                    safe_path("../escape.txt")  # outside this workspace
                except RuntimeEnvError as exc:
                    print(f"{user}: escaping the workspace is refused ({exc.code})")
        for user in ("alice", "bob"):
            print(f"{user}/notes.txt:", (root / user / "notes.txt").read_text())
        assert (root / "bob" / "notes.txt").read_text() == "note from bob"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(Path(tmp).resolve()))


if __name__ == "__main__":
    main()
