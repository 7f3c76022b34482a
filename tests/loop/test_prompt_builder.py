"""SystemPromptBuilder and the prompt helpers: sections, order, placement, and what each section shows."""

from __future__ import annotations

import pytest

from power_loop import (
    BUILTIN_SECTIONS,
    DEFAULT_AGENT_SYSTEM_PROMPT,
    DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT,
    DEFAULT_SUBAGENT_SYSTEM_PROMPT,
    ConfigError,
    SystemPromptBuilder,
    SystemPromptContext,
    ToolDefinition,
    ToolRegistry,
    build_agent_system_prompt,
    build_explore_subagent_system_prompt,
    build_subagent_system_prompt,
    format_tool_catalog,
)


def _registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(ToolDefinition("todo", "Keep a todo list."), lambda items: "ok")
    registry.register(ToolDefinition("read_file", "Read a file."), lambda path: "x")
    return registry


def test_builtin_sections_in_the_published_order() -> None:
    assert BUILTIN_SECTIONS == (
        "identity",
        "style",
        "workflow",
        "security",
        "tool_guide",
        "tool_catalog",
        "paths",
        "todo_discipline",
        "skills",
    )
    assert SystemPromptBuilder().section_names() == list(BUILTIN_SECTIONS)
    assert SystemPromptBuilder(use_defaults=False).section_names() == []


def test_sections_render_from_the_context_and_empty_ones_are_left_out() -> None:
    bare = SystemPromptBuilder().build()
    assert bare.startswith(DEFAULT_AGENT_SYSTEM_PROMPT)
    assert "# Available Tools" not in bare and "todo" not in bare and "# Paths" not in bare
    ctx = SystemPromptContext(
        workspace_dir="/w",
        skills_dir="/s",
        skill_descriptions="- pdf: read PDFs",
        tool_definitions=_registry(),
        extra="Answer in French.",
    )
    full = SystemPromptBuilder().build(ctx)
    assert "- **todo**: Keep a todo list." in full and "- **read_file**: Read a file." in full
    assert "/w" in full and "/s" in full and "- pdf: read PDFs" in full
    assert "`todo` tool" in full
    assert full.endswith("Answer in French.")
    # Sections come out in builder order.
    assert full.index("# Available Tools") < full.index("# Paths") < full.index("# Skills")


def test_use_add_remove_and_placement() -> None:
    builder = SystemPromptBuilder().use("identity", "security")
    assert builder.section_names() == ["identity", "security"]
    builder.add("house", "House rules apply.", after="identity").add("sign", lambda ctx: f"model={ctx.model}")
    assert builder.section_names() == ["identity", "house", "security", "sign"]
    builder.add("first", "First!", before="identity")
    assert builder.section_names()[0] == "first"
    builder.add("house", "Other rules.")  # replacing keeps the place
    assert builder.section_names() == ["first", "identity", "house", "security", "sign"]
    text = builder.build(SystemPromptContext(model="m1"))
    assert text.startswith("First!") and "Other rules." in text and text.endswith("model=m1")
    builder.remove("sign", "first")
    assert builder.section_names() == ["identity", "house", "security"]
    for bad in (
        lambda: builder.remove("nope"),
        lambda: builder.use("nope"),
        lambda: builder.add("x", "y", before="identity", after="house"),
        lambda: builder.add("x", "y", before="missing"),
        lambda: builder.add("", "y"),
        lambda: builder.add("x", 42),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigError):
            bad()


def test_agent_subagent_and_explorer_prompts() -> None:
    ctx = SystemPromptContext(tool_names=("todo",), skill_descriptions="- s: a skill")
    agent = build_agent_system_prompt(ctx, "Be brief.")
    assert agent.startswith(DEFAULT_AGENT_SYSTEM_PROMPT) and agent.endswith("Be brief.")
    sub = build_subagent_system_prompt(ctx)
    assert sub.startswith(DEFAULT_SUBAGENT_SYSTEM_PROMPT) and "- s: a skill" in sub
    explore = build_explore_subagent_system_prompt(ctx, "Only look.")
    assert explore.startswith(DEFAULT_EXPLORE_SUBAGENT_SYSTEM_PROMPT)
    assert "- s: a skill" not in explore and "`todo` tool" not in explore and explore.endswith("Only look.")
    custom = SystemPromptBuilder(use_defaults=False).add("only", "Just this.")
    assert build_agent_system_prompt(ctx, builder=custom) == "Just this."


def test_format_tool_catalog_takes_a_registry_definitions_or_dicts() -> None:
    registry = _registry()
    expected = "# T\n\n- **todo**: Keep a todo list.\n- **read_file**: Read a file."
    assert format_tool_catalog(registry, header="# T") == expected
    assert format_tool_catalog(registry.definitions(), header="# T") == expected
    assert format_tool_catalog(registry.to_openai_tools(), header="# T") == expected
