"""Built-in tools: a preset registry (files, bash, todo, wake-ups, background tasks) and a scripted model.

Run it::

    python examples/06_builtin_tools.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM
from power_loop.tools import (
    BACKGROUND_TOOL_NAMES,
    FULL_TOOL_NAMES,
    TOOL_PRESETS,
    create_default_tool_registry,
    register_background_tools,
)


async def main() -> None:
    print("presets:", {name: len(tools) for name, tools in TOOL_PRESETS.items()})

    # The "model" plans with todo, writes a file, runs a command on it and schedules a wake-up.
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call(
                "todo",
                {
                    "items": [
                        {"id": "1", "text": "write the greeting", "status": "in_progress"},
                        {"id": "2", "text": "check it with wc", "status": "pending"},
                    ]
                },
            ),
            ScriptedLLM.tool_call("write_file", {"path": "hello.txt", "content": "hello\nworld\n"}),
            ScriptedLLM.tool_call("bash", {"command": "wc -l hello.txt", "timeout": 10}),
            ScriptedLLM.tool_call("schedule_wakeup", {"delay_seconds": 3600, "note": "re-check hello.txt"}),
            ScriptedLLM.tool_call("background_run", {"command": "sleep 600"}),  # returns at once
            ScriptedLLM.tool_call("read_file", {"path": "../outside.txt"}),  # refused: outside the workspace
            ScriptedLLM.text("All done."),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        # bash + file tools need workspace_dir (no cwd fallback); leave out the context-pipeline tools.
        registry = create_default_tool_registry(
            workspace_dir=workspace,
            exclude=[
                n for n in FULL_TOOL_NAMES if n.startswith(("note_", "recall_")) or n in BACKGROUND_TOOL_NAMES
            ],
        )
        # Registered on their own, the background tools hand back the supervisor of their tasks.
        background = register_background_tools(registry, workspace, output_dir=Path(tmp) / "bg")
        print("tools:", ", ".join(registry.names()))
        async with StatefulAgentLoop(
            llm=llm, dsn=str(Path(tmp) / "agent.db"), tool_registry=registry
        ) as loop:
            sid = await loop.new_session()
            result = await loop.send("Write a greeting and check it.", sid)
            for message in await loop.get_messages(sid):
                if message["role"] == "tool":
                    print(f"--- {message.get('name', 'tool')}\n{message['content']}")
            store = await loop.ensure_store()
            print("stored todo:", await store.get_runtime_state(sid, "todo"))
            print("armed wake-ups:", [t.note for t in await loop.list_timers(sid)])
            print("final:", result.status, result.final_text)
            print("background tasks killed at shutdown:", await background.aclose())


if __name__ == "__main__":
    asyncio.run(main())
