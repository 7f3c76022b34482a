"""Skills: SKILL.md discovery, front matter without PyYAML, the load_skill tool, and the loop's skills_dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from power_loop import (
    LOAD_SKILL_DEFINITION,
    AgentLoopConfig,
    ConfigError,
    SkillLoader,
    StatefulAgentLoop,
    ToolRegistry,
    get_default_loader,
    register_skill_tools,
)
from power_loop.testing import ScriptedLLM
from power_loop.tools import parse_front_matter


def _skills(root: Path) -> Path:
    (root / "pdf").mkdir(parents=True)
    (root / "pdf" / "SKILL.md").write_text(
        '---\nname: pdf\ndescription: "Read and fill PDF forms"\nlicense: MIT\n---\n# PDF\n\nUse pdftotext.\n',
        encoding="utf-8",
    )
    (root / "csv").mkdir()
    (root / "csv" / "SKILL.md").write_text("# Tidy CSV files\n\nSort columns first.\n", encoding="utf-8")
    (root / "empty").mkdir()  # no SKILL.md: not a skill
    (root / ".hidden").mkdir()
    (root / ".hidden" / "SKILL.md").write_text("hidden", encoding="utf-8")
    (root / "README.md").write_text("not a skill folder", encoding="utf-8")
    return root


def test_loader_finds_skills_and_describes_them(tmp_path: Path) -> None:
    loader = SkillLoader(_skills(tmp_path / "skills"))
    assert loader.names == ["csv", "pdf"]
    assert loader.get_descriptions() == "- csv: Tidy CSV files\n- pdf: Read and fill PDF forms"
    pdf = loader.get("pdf")
    assert pdf is not None and pdf.fields["license"] == "MIT" and pdf.body.startswith("# PDF")
    content = loader.get_content("pdf")
    assert content.startswith('<skill name="pdf" path="') and content.endswith("</skill>")
    assert "Use pdftotext." in content and str(tmp_path / "skills" / "pdf") in content
    assert "---" not in content  # front matter is not repeated
    section = loader.build_system_prompt_section()
    assert section.startswith("# Skills") and "- pdf: Read and fill PDF forms" in section


def test_unknown_skills_and_reload(tmp_path: Path) -> None:
    root = _skills(tmp_path / "skills")
    loader = SkillLoader(root)
    assert loader.handle_load_skill("../pdf").startswith("Error: unknown skill '../pdf'; available: csv, pdf")
    with pytest.raises(ConfigError):
        loader.get_content("nope")
    (root / "new").mkdir()
    (root / "new" / "SKILL.md").write_text("New skill", encoding="utf-8")
    assert "new" not in loader.names  # scanned once ...
    loader.reload()
    assert loader.names == ["csv", "new", "pdf"]  # ... until reload


def test_missing_dir_env_default_and_bad_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWER_LOOP_SKILLS_DIR", raising=False)
    assert SkillLoader().names == [] and SkillLoader().build_system_prompt_section() == ""
    assert SkillLoader(tmp_path / "missing").names == []
    monkeypatch.setenv("POWER_LOOP_SKILLS_DIR", str(_skills(tmp_path / "env")))
    assert get_default_loader().names == ["csv", "pdf"]
    assert get_default_loader() is not get_default_loader()  # nothing cached process-wide
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError):
        SkillLoader(tmp_path / "file")


def test_front_matter_subset() -> None:
    fields, body = parse_front_matter(
        "---\ndescription: >\n  folded over\n  two lines\ntitle: 'quoted'\n# comment\n---\nBody"
    )
    assert fields == {"description": "folded over two lines", "title": "quoted"} and body == "Body"
    assert parse_front_matter("no front matter") == ({}, "no front matter")
    assert parse_front_matter("---\nunterminated: yes") == ({}, "---\nunterminated: yes")


@given(st.text(max_size=300))
def test_front_matter_never_raises(text: str) -> None:
    fields, body = parse_front_matter(text)
    assert isinstance(fields, dict) and isinstance(body, str)


async def test_register_skill_tools_and_the_loop_skills_dir(tmp_path: Path) -> None:
    root = _skills(tmp_path / "skills")
    registry = ToolRegistry()
    loader = register_skill_tools(registry, skills_dir=root)
    assert registry.names() == [LOAD_SKILL_DEFINITION.name] and loader.names == ["csv", "pdf"]
    assert "Use pdftotext." in await registry.invoke_async("load_skill", {"name": "pdf"})

    llm = ScriptedLLM([ScriptedLLM.tool_call("load_skill", {"name": "csv"}), ScriptedLLM.text("done")])
    loop = StatefulAgentLoop(
        llm=llm, dsn=str(tmp_path / "s.db"), config=AgentLoopConfig(skills_dir=str(root))
    )
    try:
        sid = await loop.new_session()
        result = await loop.send("tidy my csv", session_id=sid)
        assert result.status == "completed"
        system = llm.requests[0].system_prompt or ""
        assert "# Skills" in system and "- csv: Tidy CSV files" in system and "**load_skill**" in system
        tool_result = (await loop.get_messages(sid))[2]
        assert tool_result["role"] == "tool" and "Sort columns first." in tool_result["content"]
    finally:
        await loop.aclose()
    with pytest.raises(ConfigError):
        AgentLoopConfig(skills_dir=42)  # type: ignore[arg-type]
