"""The ``bash`` tool and the ShellBackend seam."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from power_loop.errors import ConfigError
from power_loop.tools import (
    BASH_TOOL_DEFINITION,
    LocalShellBackend,
    ShellBackend,
    ToolHandlerResult,
    ToolRegistry,
    execute_tool_call,
    register_bash_tool,
    run_shell_command,
)


def _call(name: str, args: dict[str, object]) -> dict[str, object]:
    import json

    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _real(path: Path) -> str:
    return os.path.realpath(path)


async def _dies(pid: int) -> bool:
    """Whether ``pid`` is dead (or a zombie) soon: SIGKILL is delivered asynchronously, and a loaded
    2-core machine can take far more than a second to reap it (bounded at 30 s, returns at once)."""
    import asyncio

    for _ in range(3000):
        if _proc_state(pid) in ("gone", "Z", "X"):
            return True
        await asyncio.sleep(0.01)
    return False


def _proc_state(pid: int) -> str:
    """The /proc state letter of ``pid``, or "gone"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return "gone"


async def test_runs_in_the_workspace_with_plain_env(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here")
    result = await run_shell_command('pwd; ls; echo "$TERM $NO_COLOR"', tmp_path)
    assert result.ok
    lines = result.content.splitlines()
    assert lines[0] == _real(tmp_path)
    assert "marker.txt" in lines
    assert "dumb 1" in lines
    assert lines[-1] == "[exit code: 0]"


async def test_nonzero_exit_and_stderr_are_reported(tmp_path: Path) -> None:
    result = await run_shell_command("echo out; echo err >&2; exit 3", tmp_path)
    assert not result.ok
    assert result.data["exit_code"] == 3
    assert result.content == "out\nerr\n[exit code: 3]"


async def test_no_output(tmp_path: Path) -> None:
    result = await run_shell_command("true", tmp_path)
    assert result.content == "(no output)\n[exit code: 0]"


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The backgrounded sleep is a grandchild of bash: killing only bash would leave it running.
    result = await run_shell_command(
        f"echo started; sleep 5 & echo $! > {pid_file}; wait", tmp_path, timeout_s=1
    )
    assert not result.ok
    assert result.data["timed_out"] is True
    assert "started" in result.content
    assert "[timed out after 1s" in result.content
    child = int(pid_file.read_text())
    # The child was SIGKILLed (and reaped by init, or a zombie at worst): it is not running `sleep`.
    assert await _dies(child)


async def test_output_is_truncated_head_and_tail(tmp_path: Path) -> None:
    result = await run_shell_command(
        "echo FIRST; for i in $(seq 1 30000); do echo line-$i; done; echo LAST", tmp_path
    )
    assert result.ok
    assert len(result.content) < 50_200
    assert result.content.startswith("FIRST\n")
    assert "characters truncated" in result.content
    assert result.content.endswith("LAST\n[exit code: 0]")


async def test_huge_output_is_bounded_in_memory(tmp_path: Path) -> None:
    result = await run_shell_command("head -c 5000000 /dev/zero | tr '\\0' 'a'; echo; echo END", tmp_path)
    match = re.search(r"\[(\d+) characters truncated\]", result.content)
    assert match is not None and 4_900_000 < int(match.group(1)) < 5_000_000
    assert result.content.endswith("END\n[exit code: 0]")
    assert len(result.content) < 50_200


class RecordingBackend:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.calls: list[tuple[str, Path]] = []

    def launch_argv(self, workspace_dir: Path) -> list[str]:
        self.calls.append(("argv", workspace_dir))
        return ["/bin/sh"]

    def launch_cwd(self, workspace_dir: Path) -> str | None:
        self.calls.append(("cwd", workspace_dir))
        return str(self.cwd)

    def launch_env(self, workspace_dir: Path) -> dict[str, str]:
        self.calls.append(("env", workspace_dir))
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FROM_BACKEND": "yes"}


async def test_custom_backend_receives_the_calls(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    ws = tmp_path / "ws"
    elsewhere.mkdir()
    ws.mkdir()
    backend = RecordingBackend(elsewhere)
    assert isinstance(backend, ShellBackend)
    reg = ToolRegistry()
    register_bash_tool(reg, ws, backend=backend)
    outcome = await execute_tool_call(reg, _call("bash", {"command": "pwd; echo $FROM_BACKEND"}))
    assert not outcome.failed
    assert outcome.output.splitlines()[:2] == [_real(elsewhere), "yes"]
    assert sorted(kind for kind, _ in backend.calls) == ["argv", "cwd", "env"]
    assert {path for _, path in backend.calls} == {Path(_real(ws))}


async def test_unstartable_shell_is_an_error_result(tmp_path: Path) -> None:
    backend = LocalShellBackend(bash_path=str(tmp_path / "no-such-bash"))
    result = await run_shell_command("echo hi", tmp_path, backend=backend)
    assert isinstance(result, ToolHandlerResult) and not result.ok
    assert result.content.startswith("Error: could not start the shell")


async def test_tool_schema_bounds_timeout(tmp_path: Path) -> None:
    reg = ToolRegistry()
    register_bash_tool(reg, tmp_path)
    assert reg.definitions() == [BASH_TOOL_DEFINITION]
    for bad in (0, 601):
        outcome = await execute_tool_call(reg, _call("bash", {"command": "echo x", "timeout": bad}))
        assert outcome.failed and "timeout" in outcome.output
    outcome = await execute_tool_call(reg, _call("bash", {"command": "exit 2", "timeout": 5}))
    assert outcome.failed and outcome.output.endswith("[exit code: 2]")


def test_bash_needs_an_existing_workspace(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        register_bash_tool(ToolRegistry(), tmp_path / "missing")


def test_local_backend_shape(tmp_path: Path) -> None:
    backend = LocalShellBackend(extra_env={"X": "1"})
    assert backend.launch_argv(tmp_path) == ["/bin/bash", "--norc", "--noprofile"]
    assert backend.launch_cwd(tmp_path) == str(tmp_path)
    env = backend.launch_env(tmp_path)
    assert (env["TERM"], env["NO_COLOR"], env["X"]) == ("dumb", "1", "1")
    assert "bash_path='/bin/bash'" in repr(backend)


def test_shell_module_is_loaded_lazily() -> None:
    code = "import sys, power_loop.tools; print('power_loop.tools._shell' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


async def test_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    import asyncio

    pid_file = tmp_path / "child.pid"
    task = asyncio.ensure_future(run_shell_command(f"sleep 30 & echo $! > {pid_file}; wait", tmp_path))
    for _ in range(3000):  # until the child has started (bounded at 30 s, no timing assertion)
        await asyncio.sleep(0.01)
        if _read_pid(pid_file) is not None:
            break
    child = _read_pid(pid_file)
    assert child is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _dies(child)


def _read_pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


async def test_background_child_holding_the_output_does_not_block(tmp_path: Path) -> None:
    # Without a redirect the backgrounded sleep keeps the output pipe open after bash exits.
    result = await run_shell_command("sleep 30 & echo $!", tmp_path, timeout_s=20)
    child = int(result.content.splitlines()[0])
    try:
        assert result.ok
        assert "[background processes still hold the output" in result.content
        assert result.content.endswith("[exit code: 0]")
    finally:
        os.kill(child, 9)
