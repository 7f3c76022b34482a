"""Bad-input catalogue: the workspace file tools.

Each case is one tool call a model could make — traversal, absolute paths, symlinks, NUL bytes, huge,
binary and badly encoded files, FIFOs, missing files, directories used as files, bad grep patterns —
with the outcome it must produce: ``ok``, a ``PowerLoopError`` code (``tool.workspace_violation``,
``tool.budget_exceeded``), ``tool.invalid_args`` (refused by the schema, the handler never runs), or the
exception type the model is told about. After each case: nothing outside the workspace was read or
written, and the same call made by a model inside a loop leaves a valid history on which the next send
works.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.errors import PowerLoopError
from power_loop.testing import ScriptedLLM
from power_loop.tools import ToolOutcome, ToolRegistry, execute_tool_call, register_file_tools

SECRET = "TOP-SECRET-OUTSIDE"
CATASTROPHIC_LINE = "a" * 64 + "!"


@dataclass(frozen=True)
class Case:
    id: str
    tool: str
    args: dict[str, Any]
    expect: str  # "ok", a PowerLoopError code, "tool.invalid_args", or an exception type name
    output_has: str = ""
    check: Callable[[Path, Path], None] | None = field(default=None, compare=False)
    # Lone surrogates in *stored* arguments are a store/model-input case (that catalogue covers the
    # loop); here only the tool's own outcome is checked for them.
    in_loop: bool = True


def _layout(tmp: Path) -> tuple[Path, Path]:
    root, outside = tmp / "ws", tmp / "outside"
    (root / "src").mkdir(parents=True)
    (root / "sub" / "deep").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{SECRET}\n")
    (root / "src" / "app.py").write_text("import os\n\ndef main():\n    return 1\n")
    (root / "README.md").write_text("hello\nworld\n")
    (root / "dup.txt").write_text("x\nx\n")
    (root / "bin.dat").write_bytes(b"\x00\x01\x02binary")
    (root / "latin1.txt").write_bytes(b"caf\xe9 cr\xe8me\n")
    (root / "big.txt").write_bytes(b"y" * (5 * 1024 * 1024 + 1))
    (root / "long.txt").write_text("x" * 100_000 + "y\n")
    (root / "a.txt").write_text(CATASTROPHIC_LINE + "\n")
    (root / "out_link").symlink_to(outside / "secret.txt")
    (root / "out_dir").symlink_to(outside, target_is_directory=True)
    (root / "in_link").symlink_to(root / "src" / "app.py")
    os.mkfifo(root / "pipe")
    return root, outside


def _nothing_outside(_root: Path, outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == f"{SECRET}\n"


def _readme_intact(root: Path, _outside: Path) -> None:
    assert (root / "README.md").read_text() == "hello\nworld\n"


W = "tool.workspace_violation"
BAD = "tool.invalid_args"
BUDGET = "tool.budget_exceeded"

CASES: list[Case] = [
    # -- read_file: escapes ------------------------------------------------------------------
    Case("read-dotdot", "read_file", {"path": "../outside/secret.txt"}, W),
    Case("read-dotdot-inner", "read_file", {"path": "src/../../outside/secret.txt"}, W),
    Case("read-dotdot-harmless", "read_file", {"path": "src/../README.md"}, W),
    Case("read-abs-outside", "read_file", {"path": "{outside}/secret.txt"}, W),
    Case("read-abs-etc", "read_file", {"path": "/etc/passwd"}, W),
    Case("read-abs-inside", "read_file", {"path": "{root}/README.md"}, "ok", "hello"),
    Case("read-symlink-file-out", "read_file", {"path": "out_link"}, W),
    Case("read-symlink-dir-out", "read_file", {"path": "out_dir/secret.txt"}, W),
    Case("read-symlink-dir-itself", "read_file", {"path": "out_dir"}, W),
    Case("read-symlink-inside", "read_file", {"path": "in_link"}, "ok", "def main"),
    Case("read-nul", "read_file", {"path": "README.md\x00.txt"}, W),
    Case("read-blank", "read_file", {"path": "   "}, W),
    Case("read-empty", "read_file", {"path": ""}, BAD),
    Case("read-tilde", "read_file", {"path": "~/secret.txt"}, "FileNotFoundError"),
    Case("read-urlencoded", "read_file", {"path": "..%2Foutside%2Fsecret.txt"}, "FileNotFoundError"),
    Case("read-backslash", "read_file", {"path": "..\\outside\\secret.txt"}, "FileNotFoundError"),
    # -- read_file: what is there ------------------------------------------------------------
    Case("read-missing", "read_file", {"path": "nope.txt"}, "FileNotFoundError", "nope.txt"),
    Case("read-missing-dir", "read_file", {"path": "nope/deeper.txt"}, "FileNotFoundError"),
    Case("read-file-as-dir", "read_file", {"path": "README.md/child"}, "NotADirectoryError"),
    Case("read-directory", "read_file", {"path": "src"}, "ok", "app.py"),
    Case("read-root", "read_file", {"path": "."}, "ok", "README.md"),
    Case("read-binary", "read_file", {"path": "bin.dat"}, "ValueError", "binary"),
    Case("read-latin1", "read_file", {"path": "latin1.txt"}, "ok", "caf\ufffd"),
    Case("read-huge", "read_file", {"path": "big.txt"}, "ValueError", "bytes"),
    Case("read-fifo", "read_file", {"path": "pipe"}, "ValueError", "not a regular file"),
    Case("read-long-line", "read_file", {"path": "long.txt"}, "ok"),
    Case("read-offset-past-end", "read_file", {"path": "README.md", "offset": 99}, "ok", "nothing at offset"),
    Case("read-limit-zero", "read_file", {"path": "README.md", "limit": 0}, BAD),
    Case("read-offset-negative", "read_file", {"path": "README.md", "offset": -5}, BAD),
    Case("read-path-int", "read_file", {"path": 7}, BAD),
    Case("read-extra-arg", "read_file", {"path": "README.md", "mode": "rb"}, BAD),
    Case("read-no-args", "read_file", {}, BAD),
    # -- write_file --------------------------------------------------------------------------
    Case(
        "write-dotdot",
        "write_file",
        {"path": "../outside/planted.txt", "content": "x"},
        W,
        check=_nothing_outside,
    ),
    Case(
        "write-abs-outside",
        "write_file",
        {"path": "{outside}/planted.txt", "content": "x"},
        W,
        check=_nothing_outside,
    ),
    Case(
        "write-through-dir-link",
        "write_file",
        {"path": "out_dir/planted.txt", "content": "x"},
        W,
        check=_nothing_outside,
    ),
    Case(
        "write-over-file-link", "write_file", {"path": "out_link", "content": "x"}, W, check=_nothing_outside
    ),
    Case("write-nul", "write_file", {"path": "a\x00b", "content": "x"}, W),
    Case("write-directory", "write_file", {"path": "src", "content": "x"}, "IsADirectoryError"),
    Case("write-root", "write_file", {"path": ".", "content": "x"}, "IsADirectoryError"),
    Case(
        "write-below-a-file",
        "write_file",
        {"path": "README.md/child.txt", "content": "x"},
        "NotADirectoryError",
        check=_readme_intact,
    ),
    Case(
        "write-no-overwrite",
        "write_file",
        {"path": "README.md", "content": "x", "overwrite": False},
        "FileExistsError",
        check=_readme_intact,
    ),
    Case("write-fifo", "write_file", {"path": "pipe", "content": "x"}, "OSError"),
    Case(
        "write-lone-surrogate",
        "write_file",
        {"path": "s.txt", "content": "\ud800"},
        "UnicodeEncodeError",
        in_loop=False,
    ),
    Case("write-no-content", "write_file", {"path": "n.txt"}, BAD),
    Case("write-content-not-str", "write_file", {"path": "n.txt", "content": ["x"]}, BAD),
    Case(
        "write-new-nested", "write_file", {"path": "new/a/b.txt", "content": "ü"}, "ok", "created new/a/b.txt"
    ),
    # -- edit_file ---------------------------------------------------------------------------
    Case(
        "edit-dotdot",
        "edit_file",
        {"path": "../outside/secret.txt", "old_text": "TOP", "new_text": "x"},
        W,
        check=_nothing_outside,
    ),
    Case(
        "edit-file-link",
        "edit_file",
        {"path": "out_link", "old_text": "TOP", "new_text": "x"},
        W,
        check=_nothing_outside,
    ),
    Case(
        "edit-missing",
        "edit_file",
        {"path": "nope.txt", "old_text": "a", "new_text": "b"},
        "FileNotFoundError",
    ),
    Case(
        "edit-not-found",
        "edit_file",
        {"path": "README.md", "old_text": "zzz", "new_text": "b"},
        "ValueError",
        "not found",
    ),
    Case(
        "edit-ambiguous",
        "edit_file",
        {"path": "dup.txt", "old_text": "x", "new_text": "y"},
        "ValueError",
        "2 times",
    ),
    Case(
        "edit-binary",
        "edit_file",
        {"path": "bin.dat", "old_text": "b", "new_text": "c"},
        "ValueError",
        "binary",
    ),
    Case(
        "edit-directory", "edit_file", {"path": "src", "old_text": "a", "new_text": "b"}, "IsADirectoryError"
    ),
    Case("edit-empty-old", "edit_file", {"path": "README.md", "old_text": "", "new_text": "b"}, BAD),
    # -- glob --------------------------------------------------------------------------------
    Case("glob-dotdot", "glob", {"pattern": "../*"}, W),
    Case("glob-absolute", "glob", {"pattern": "/etc/*"}, W),
    Case("glob-path-outside", "glob", {"pattern": "*", "path": "../outside"}, W),
    Case("glob-path-is-file", "glob", {"pattern": "*", "path": "README.md"}, "NotADirectoryError"),
    Case("glob-never-lists-outside", "glob", {"pattern": "**/*"}, "ok", "README.md"),
    Case("glob-max-zero", "glob", {"pattern": "*", "max_results": 0}, BAD),
    # Long star chains (backtracking as regexes; tests/tools/test_files.py has the long names they need).
    Case("glob-many-stars", "glob", {"pattern": "*?" * 40 + "x"}, "ok", "no files match"),
    Case("glob-many-globstars", "glob", {"pattern": "**/" * 20 + "*a" * 20 + "x"}, "ok", "no files match"),
    Case("glob-bad-set", "glob", {"pattern": "[z-a].txt"}, "ValueError", "invalid character set"),
    # -- grep --------------------------------------------------------------------------------
    Case("grep-nested-quantifier", "grep", {"pattern": "(a+)+$"}, BUDGET, "literal=true"),
    Case("grep-overlapping-alternation", "grep", {"pattern": "(a|a)+$"}, BUDGET),
    Case("grep-literal-is-safe", "grep", {"pattern": "(a+)+$", "literal": True}, "ok", "no matches"),
    Case("grep-invalid-regex", "grep", {"pattern": "("}, "ValueError", "literal=true"),
    # No quantifier, yet 2**40 ways to match the line's "a"s before failing on the "b".
    Case("grep-alternation-chain", "grep", {"pattern": "(?:a|a)" * 40 + "b"}, BUDGET),
    Case("grep-nested-too-deep", "grep", {"pattern": "(" * 5000 + ")" * 5000}, "ValueError", "literal=true"),
    Case("grep-count-too-large", "grep", {"pattern": "a{{99999999999}}"}, "ValueError", "literal=true"),
    Case("grep-path-outside", "grep", {"pattern": "SECRET", "path": "../outside"}, W),
    Case("grep-never-reads-outside", "grep", {"pattern": "SECRET"}, "ok", "no matches"),
    Case("grep-binary-file", "grep", {"pattern": "binary", "path": "bin.dat"}, "ok", "no matches"),
    Case("grep-fifo", "grep", {"pattern": "x", "path": "pipe"}, "ok", "no matches"),
    Case("grep-long-line", "grep", {"pattern": "x+y", "path": "long.txt"}, "ok", "no matches"),
    Case("grep-include", "grep", {"pattern": "def", "include": "*.py"}, "ok", "src/app.py:3:"),
    Case("grep-nul-pattern", "grep", {"pattern": "a\x00"}, "ok", "no matches"),
    Case("grep-surrogate-pattern", "grep", {"pattern": "\ud800+"}, "ok", "no matches", in_loop=False),
    Case("grep-max-zero", "grep", {"pattern": "x", "max_results": 0}, BAD),
    Case("grep-empty-pattern", "grep", {"pattern": ""}, BAD),
]


def _code(outcome: ToolOutcome) -> str:
    if not outcome.failed:
        return "ok"
    if outcome.error is None:
        return BAD  # refused before the handler ran (schema / arguments)
    if isinstance(outcome.error, PowerLoopError):
        return outcome.error.code
    return type(outcome.error).__name__


def _args(case: Case, root: Path, outside: Path) -> dict[str, Any]:
    return {
        k: v.format(root=root, outside=outside) if isinstance(v, str) and "{" in v else v
        for k, v in case.args.items()
    }


def _valid_history(messages: list[dict[str, Any]]) -> None:
    open_calls: set[str] = set()
    for msg in messages:
        if msg["role"] == "tool":
            open_calls.remove(msg["tool_call_id"])  # KeyError: a result without its call
        else:
            assert not open_calls, f"calls left unanswered before a {msg['role']} turn"
            open_calls.update(c["id"] for c in msg.get("tool_calls") or [])
    assert not open_calls


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_file_tool_case(case: Case, tmp_path: Path) -> None:
    root, outside = _layout(tmp_path)
    registry = ToolRegistry()
    register_file_tools(registry, root, grep_timeout=3.0)  # catastrophic patterns need ~2**64 steps
    args = _args(case, root, outside)
    call = {"id": "c1", "type": "function", "function": {"name": case.tool, "arguments": json.dumps(args)}}
    outcome = await execute_tool_call(registry, call)
    assert _code(outcome) == case.expect, outcome.output
    assert case.output_has in outcome.output
    assert SECRET not in outcome.output
    if str(tmp_path) not in json.dumps(args):  # the host's layout appears only if the model sent it
        assert str(tmp_path) not in outcome.output
    assert "Traceback" not in outcome.output
    _nothing_outside(root, outside) if case.check is None else case.check(root, outside)

    if case.expect == BUDGET or not case.in_loop:
        return  # BUDGET: the loop run would only repeat the same bounded wait
    # The same call from a model: a valid history, and the session takes the next send.
    llm = ScriptedLLM(
        [ScriptedLLM.tool_call(case.tool, args), ScriptedLLM.text("noted"), ScriptedLLM.text("again")]
    )
    async with StatefulAgentLoop(llm=llm, dsn=":memory:", tool_registry=registry) as loop:
        sid = await loop.new_session()
        first = await loop.send("go", sid)
        assert first.status == "completed" and first.final_text == "noted"
        second = await loop.send("and now?", sid)
        assert second.status == "completed" and second.final_text == "again"
        history = await loop.get_messages(sid)
    _valid_history(history)
    tool_results = [m for m in history if m["role"] == "tool"]
    assert len(tool_results) == 1 and SECRET not in str(tool_results[0]["content"])


def test_catalogue_size() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
