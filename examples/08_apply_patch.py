"""`apply_patch`: the model edits a file with unified-diff hunks; a stale hunk is refused.

A hunk whose lines are not in the file (stale) or are ambiguous is refused and the file is left
untouched; the model sees why and can re-read the file and try again.

Run it::

    python examples/08_apply_patch.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM
from power_loop.tools import create_default_tool_registry

GOOD = """@@ -1,2 +1,2 @@
 def greet(name):
-    return "Hello " + name
+    return f"Hello, {name}!"
"""
STALE = """@@ -1,2 +1,2 @@
-def greet(person):
+def greet(who):
"""


async def demo(workspace: Path) -> None:
    (workspace / "greet.py").write_text(
        'def greet(name):\n    return "Hello " + name\n\nprint(greet("Ada"))\n'
    )
    registry = create_default_tool_registry(
        include=["apply_patch", "read_file"], workspace_dir=str(workspace)
    )
    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("apply_patch", {"path": "greet.py", "patch": GOOD}),
            ScriptedLLM.tool_call("apply_patch", {"path": "greet.py", "patch": STALE}),
            ScriptedLLM.text("Done: greet() now uses an f-string."),
        ]
    )
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=registry) as loop:
        sid = await loop.new_session()
        result = await loop.send("Use an f-string in greet()", sid)
        for message in await loop.get_messages(sid):
            if message["role"] == "tool":
                print("tool result:", message["content"], sep="\n", end="\n\n")
    print("final:", result.final_text)
    print("greet.py now:", (workspace / "greet.py").read_text(), sep="\n")
    assert 'f"Hello, {name}!"' in (workspace / "greet.py").read_text()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(Path(tmp)))


if __name__ == "__main__":
    main()
