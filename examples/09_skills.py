"""Skills: folders of instructions the model sees as one line each and loads on demand.

A skill is `<skills_dir>/<name>/SKILL.md` with a `description:` in its front matter.
`AgentLoopConfig(skills_dir=...)` puts a `# Skills` section in the system prompt and registers the
`load_skill` tool; `SkillLoader` reads the same folder from your own code.

Run it::

    python examples/09_skills.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from power_loop import AgentLoopConfig, SkillLoader, StatefulAgentLoop
from power_loop.testing import ScriptedLLM

SKILL = """---
description: Write release notes from a list of merged changes
---
# Release notes
Group the changes under Added / Changed / Fixed, one line each, newest first.
"""


async def demo(skills_dir: Path) -> None:
    (skills_dir / "release-notes").mkdir()
    (skills_dir / "release-notes" / "SKILL.md").write_text(SKILL)
    loader = SkillLoader(skills_dir=str(skills_dir))
    print("skills:", loader.names, "->", loader.get_descriptions())

    llm = ScriptedLLM(
        [
            ScriptedLLM.tool_call("load_skill", {"name": "release-notes"}),
            ScriptedLLM.text("Added: dark mode.\nFixed: login timeout."),
        ]
    )
    config = AgentLoopConfig(skills_dir=str(skills_dir))
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", config=config) as loop:
        sid = await loop.new_session()
        result = await loop.send("Release notes for: dark mode, login timeout fix", sid)
        prompt = llm.requests[0].system_prompt or ""
        print("in the system prompt:", prompt[prompt.index("# Skills") :].splitlines()[:3])
        loaded = next(m["content"] for m in await loop.get_messages(sid) if m["role"] == "tool")
        print("load_skill returned:", loaded.splitlines()[0], "...")
        print("answer:", result.final_text)
        assert "Group the changes" in loaded


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        asyncio.run(demo(Path(tmp)))


if __name__ == "__main__":
    main()
