"""RuntimeEnv: directories from arguments or POWER_LOOP_* variables, per-task contexts, safe_path,
and unbound tool registries that find their workspace at call time."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import power_loop as pl
from power_loop import (
    ConfigError,
    RuntimeEnv,
    RuntimeEnvError,
    ToolRegistry,
    create_default_tool_registry,
    get_runtime_env,
    runtime_env_context,
    safe_path,
)
from power_loop.tools import execute_tool_call


def _call(name: str, args: dict) -> dict:
    import json

    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def test_from_env_reads_variables_and_makes_paths_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POWER_LOOP_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("POWER_LOOP_HOME", "~/plhome")
    monkeypatch.delenv("POWER_LOOP_SKILLS_DIR", raising=False)
    env = RuntimeEnv.from_env()
    assert env.workspace_dir == tmp_path / "ws" and env.home_dir == Path(os.path.expanduser("~/plhome"))
    assert env.skills_dir is None
    assert RuntimeEnv.from_env(workspace_dir="rel").workspace_dir == Path(os.path.abspath("rel"))
    with pytest.raises(RuntimeEnvError, match="skills dir") as caught:
        env.require_skills_dir()
    assert caught.value.code == "runtime_env.missing"
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, ConfigError)
    assert env.home_rw_allowlist == (env.home_dir / ".cache", env.home_dir / "logs")


async def test_context_is_per_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWER_LOOP_WORKSPACE", raising=False)
    assert get_runtime_env().workspace_dir is None
    a, b = RuntimeEnv(workspace_dir=tmp_path / "a"), RuntimeEnv(workspace_dir=tmp_path / "b")

    async def inside(env: RuntimeEnv) -> Path | None:
        with runtime_env_context(env):
            await asyncio.sleep(0)
            return get_runtime_env().workspace_dir

    assert await asyncio.gather(inside(a), inside(b)) == [tmp_path / "a", tmp_path / "b"]
    assert get_runtime_env().workspace_dir is None
    with pytest.raises(TypeError):
        with runtime_env_context("not an env"):  # type: ignore[arg-type]
            pass


def test_safe_path_allows_the_workspace_and_the_home_allowlist_only(tmp_path: Path) -> None:
    ws, home = tmp_path / "ws", tmp_path / "home"
    (ws / "sub").mkdir(parents=True)
    (home / ".cache").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", ws / "escape")
    env = RuntimeEnv(workspace_dir=ws, home_dir=home)
    assert safe_path("sub/x.txt", env=env) == ws / "sub" / "x.txt"
    assert safe_path("@workspace/sub", env=env) == ws / "sub"
    assert safe_path(str(ws / "sub"), env=env) == ws / "sub"
    assert safe_path("@home/.cache/k", env=env) == home / ".cache" / "k"
    for bad in ("../x", "/etc/passwd", "escape/secret", "@home/.ssh/id_rsa", "", "a\x00b"):
        with pytest.raises(RuntimeEnvError):
            safe_path(bad, env=env)
    with runtime_env_context(env):
        assert safe_path("sub") == ws / "sub"


async def test_unbound_registry_uses_the_current_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWER_LOOP_WORKSPACE", raising=False)
    with pytest.raises(RuntimeEnvError, match="bind=False"):
        create_default_tool_registry(preset="core")
    registry = create_default_tool_registry(preset="core", bind=False)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "who.txt").write_text(f"I am {name}\n", encoding="utf-8")

    async def read_in(name: str) -> str:
        with runtime_env_context(RuntimeEnv(workspace_dir=tmp_path / name)):
            outcome = await execute_tool_call(registry, _call("read_file", {"path": "who.txt"}))
            shell = await execute_tool_call(registry, _call("bash", {"command": "cat who.txt"}))
            assert f"I am {name}" in shell.output
            return outcome.output

    outputs = await asyncio.gather(read_in("a"), read_in("b"))
    assert "I am a" in outputs[0] and "I am b" in outputs[1]
    outside = await execute_tool_call(registry, _call("read_file", {"path": "who.txt"}))
    assert outside.failed and "no workspace dir is configured" in outside.output


def test_bound_registry_falls_back_to_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWER_LOOP_WORKSPACE", str(tmp_path))
    assert "read_file" in create_default_tool_registry(preset="core").names()
    skills = tmp_path / "skills" / "demo"
    skills.mkdir(parents=True)
    (skills / "SKILL.md").write_text("Demo skill", encoding="utf-8")
    registry = create_default_tool_registry(include=["todo"], skills_dir=tmp_path / "skills")
    assert registry.names() == ["todo", "load_skill"]
    assert isinstance(registry, ToolRegistry)


async def test_get_tool_definitions_and_default_handlers(tmp_path: Path) -> None:
    from power_loop import DEFAULT_TOOL_HANDLERS, FULL_TOOL_NAMES, get_tool_definitions

    assert [d.name for d in get_tool_definitions()] == list(FULL_TOOL_NAMES)  # note/recall included
    assert [d.name for d in get_tool_definitions(preset="core", exclude=["bash"])] == [
        "read_file",
        "write_file",
        "edit_file",
        "apply_patch",
        "glob",
        "grep",
        "request_user_input",
    ]
    with pytest.raises(ConfigError):
        get_tool_definitions(include=["no_such_tool"])
    assert set(DEFAULT_TOOL_HANDLERS) == set(FULL_TOOL_NAMES) and len(DEFAULT_TOOL_HANDLERS) == 20
    (tmp_path / "f.txt").write_text("hello", encoding="utf-8")
    with runtime_env_context(RuntimeEnv(workspace_dir=tmp_path)):
        text = await asyncio.to_thread(DEFAULT_TOOL_HANDLERS["read_file"], path="f.txt")
    assert "hello" in text


def test_validate_tool_args_takes_a_schema_or_a_built_in_tool_name() -> None:
    # Ours: a JSON Schema -> the list of problems.
    assert pl.validate_tool_args({"type": "object", "required": ["a"]}, {}) == [
        '$: missing required property "a"'
    ]
    assert pl.validate_tool_args({"type": "object"}, {}) == []
    # Published: a built-in tool's name -> None when valid, else the message the model would get.
    message = pl.validate_tool_args("write_file", {"path": "a.txt"})
    assert message is not None and "write_file" in message and '"content"' in message
    assert pl.validate_tool_args("write_file", {"path": "a.txt", "content": "x"}) is None
    assert pl.validate_tool_args("edit_file", {"path": "a", "old_text": "x", "new_text": 3}) is not None
    assert pl.validate_tool_args("not_a_built_in_tool", {}) is None
