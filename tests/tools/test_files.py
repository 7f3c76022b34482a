from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from power_loop.errors import ConfigError, WorkspaceViolation
from power_loop.tools import (
    FILE_TOOL_NAMES,
    ToolRegistry,
    Workspace,
    execute_tool_call,
    register_file_tools,
)


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("import os\n\ndef main():\n    return 1\n")
    (root / "README.md").write_text("hello\nworld\n")
    return {"root": root, "outside": outside}


@pytest.fixture
def registry(layout: dict[str, Path]) -> ToolRegistry:
    reg = ToolRegistry()
    register_file_tools(reg, layout["root"])
    return reg


async def run(reg: ToolRegistry, name: str, **args: Any) -> Any:
    return await execute_tool_call(
        reg, {"id": "c", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
    )


# -- Workspace.resolve: every escape attempt ----------------------------------------------------
def test_resolve_inside(layout: dict[str, Path]) -> None:
    ws = Workspace(layout["root"])
    assert ws.resolve("src/app.py") == layout["root"].resolve() / "src" / "app.py"
    assert ws.resolve(".") == ws.root
    assert ws.resolve("new/dir/file.txt") == ws.root / "new" / "dir" / "file.txt"
    assert ws.resolve(str(layout["root"] / "README.md")) == ws.root / "README.md"  # absolute inside is fine


@pytest.mark.parametrize(
    "path", ["..", "../outside/secret.txt", "src/../../outside/secret.txt", "src/../README.md"]
)
def test_dotdot_rejected(layout: dict[str, Path], path: str) -> None:
    with pytest.raises(WorkspaceViolation, match=r"'\.\.' segments"):
        Workspace(layout["root"]).resolve(path)


def test_absolute_outside_rejected(layout: dict[str, Path]) -> None:
    ws = Workspace(layout["root"])
    for path in ("/etc/passwd", str(layout["outside"] / "secret.txt"), str(layout["root"]) + "-sibling/x"):
        with pytest.raises(WorkspaceViolation, match="absolute paths"):
            ws.resolve(path)


def test_symlinked_file_escape_rejected(layout: dict[str, Path]) -> None:
    (layout["root"] / "link.txt").symlink_to(layout["outside"] / "secret.txt")
    with pytest.raises(WorkspaceViolation, match="symlink"):
        Workspace(layout["root"]).resolve("link.txt")


def test_symlinked_directory_escape_rejected(layout: dict[str, Path]) -> None:
    (layout["root"] / "sneaky").symlink_to(layout["outside"], target_is_directory=True)
    ws = Workspace(layout["root"])
    for path in ("sneaky", "sneaky/secret.txt", "sneaky/new_file.txt"):
        with pytest.raises(WorkspaceViolation, match="symlink"):
            ws.resolve(path)


def test_dangling_symlink_to_outside_rejected(layout: dict[str, Path]) -> None:
    (layout["root"] / "dangling").symlink_to(layout["outside"] / "not-yet-there.txt")
    with pytest.raises(WorkspaceViolation):
        Workspace(layout["root"]).resolve("dangling")


def test_symlink_inside_is_allowed(layout: dict[str, Path]) -> None:
    (layout["root"] / "alias.py").symlink_to(layout["root"] / "src" / "app.py")
    assert Workspace(layout["root"]).resolve("alias.py") == layout["root"].resolve() / "src" / "app.py"


def test_root_reached_through_a_symlink_still_works(layout: dict[str, Path], tmp_path: Path) -> None:
    link_root = tmp_path / "ws-link"
    link_root.symlink_to(layout["root"], target_is_directory=True)
    ws = Workspace(link_root)
    assert ws.root == layout["root"].resolve()
    assert ws.resolve(str(link_root / "README.md")) == ws.root / "README.md"


@pytest.mark.parametrize("path", ["", "   ", "a\x00b"])
def test_empty_and_nul_paths_rejected(layout: dict[str, Path], path: str) -> None:
    with pytest.raises(WorkspaceViolation):
        Workspace(layout["root"]).resolve(path)


def test_workspace_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Workspace(tmp_path / "missing")


# -- the tools through execute_tool_call --------------------------------------------------------
def test_registration(registry: ToolRegistry) -> None:
    assert (
        registry.names()
        == list(FILE_TOOL_NAMES)
        == ["read_file", "write_file", "edit_file", "apply_patch", "glob", "grep"]
    )
    reg = ToolRegistry()
    register_file_tools(reg, Workspace("."), include=["read_file"])
    assert reg.names() == ["read_file"]
    with pytest.raises(ConfigError, match="unknown file tool"):
        register_file_tools(ToolRegistry(), ".", include=["bash"])


async def test_read_file_numbers_lines_and_pages(registry: ToolRegistry, layout: dict[str, Path]) -> None:
    out = await run(registry, "read_file", path="src/app.py")
    assert out.output.splitlines()[0] == "1\timport os" and not out.failed
    (layout["root"] / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 31)))
    page = await run(registry, "read_file", path="long.txt", offset=10, limit=5)
    assert page.output.splitlines()[0] == "10\tline 10"
    assert "continue with offset=15" in page.output


async def test_read_file_directory_and_errors(registry: ToolRegistry, layout: dict[str, Path]) -> None:
    listing = await run(registry, "read_file", path=".")
    assert "src/" in listing.output and "README.md" in listing.output
    missing = await run(registry, "read_file", path="nope.txt")
    assert missing.failed and "no such file: nope.txt" in missing.output
    (layout["root"] / "bin.dat").write_bytes(b"\x00\x01\x02")
    binary = await run(registry, "read_file", path="bin.dat")
    assert binary.failed and "binary" in binary.output


async def test_read_escape_is_a_failed_outcome_without_leaking(
    registry: ToolRegistry, layout: dict[str, Path]
) -> None:
    (layout["root"] / "link.txt").symlink_to(layout["outside"] / "secret.txt")
    for path in ("../outside/secret.txt", "link.txt", str(layout["outside"] / "secret.txt")):
        out = await run(registry, "read_file", path=path)
        assert out.failed and isinstance(out.error, WorkspaceViolation)
        assert "TOP SECRET" not in out.output


async def test_write_file_creates_parents_and_respects_overwrite(
    registry: ToolRegistry, layout: dict[str, Path]
) -> None:
    out = await run(registry, "write_file", path="a/b/new.txt", content="hi ü")
    assert out.output == "created a/b/new.txt (5 bytes)"
    assert (layout["root"] / "a" / "b" / "new.txt").read_text(encoding="utf-8") == "hi ü"
    again = await run(registry, "write_file", path="a/b/new.txt", content="x", overwrite=False)
    assert again.failed and "already exists" in again.output
    over = await run(registry, "write_file", path="a/b/new.txt", content="x")
    assert over.output.startswith("overwrote")


async def test_write_through_symlinked_dir_is_refused(
    registry: ToolRegistry, layout: dict[str, Path]
) -> None:
    (layout["root"] / "sneaky").symlink_to(layout["outside"], target_is_directory=True)
    out = await run(registry, "write_file", path="sneaky/planted.txt", content="x")
    assert out.failed and not (layout["outside"] / "planted.txt").exists()


async def test_edit_file_unique_match_diff_and_line_endings(
    registry: ToolRegistry, layout: dict[str, Path]
) -> None:
    target = layout["root"] / "crlf.txt"
    target.write_bytes("\ufeffone\r\ntwo\r\nthree\r\n".encode())
    out = await run(registry, "edit_file", path="crlf.txt", old_text="two\n", new_text="TWO\n")
    assert not out.failed and "-two" in out.output and "+TWO" in out.output
    assert target.read_bytes() == "\ufeffone\r\nTWO\r\nthree\r\n".encode()


async def test_edit_file_ambiguity_and_absence(registry: ToolRegistry, layout: dict[str, Path]) -> None:
    (layout["root"] / "dup.txt").write_text("x = 1\nx = 1\n")
    amb = await run(registry, "edit_file", path="dup.txt", old_text="x = 1", new_text="x = 2")
    assert amb.failed and "occurs 2 times" in amb.output
    assert (layout["root"] / "dup.txt").read_text() == "x = 1\nx = 1\n"
    both = await run(
        registry, "edit_file", path="dup.txt", old_text="x = 1", new_text="x = 2", replace_all=True
    )
    assert "2 occurrences" in both.output and (layout["root"] / "dup.txt").read_text() == "x = 2\nx = 2\n"
    absent = await run(registry, "edit_file", path="dup.txt", old_text="nope", new_text="")
    assert absent.failed and "not found" in absent.output


async def test_glob(registry: ToolRegistry, layout: dict[str, Path]) -> None:
    (layout["root"] / "src" / "util.py").write_text("x = 1\n")
    os.utime(layout["root"] / "src" / "app.py", (1, 1))  # make app.py the oldest
    out = await run(registry, "glob", pattern="*.py")
    assert out.output.splitlines() == ["src/util.py", "src/app.py"]
    scoped = await run(registry, "glob", pattern="*.md", path="src")
    assert "no files match" in scoped.output
    (layout["root"] / ".hidden.py").write_text("")
    assert ".hidden.py" not in (await run(registry, "glob", pattern="*.py")).output
    assert ".hidden.py" in (await run(registry, "glob", pattern="*.py", include_hidden=True)).output
    bad = await run(registry, "glob", pattern="../*")
    assert bad.failed and isinstance(bad.error, WorkspaceViolation)


async def test_glob_and_grep_do_not_follow_links_out(registry: ToolRegistry, layout: dict[str, Path]) -> None:
    (layout["root"] / "sneaky").symlink_to(layout["outside"], target_is_directory=True)
    (layout["root"] / "leak.txt").symlink_to(layout["outside"] / "secret.txt")
    globbed = await run(registry, "glob", pattern="**/*.txt")
    assert "secret" not in globbed.output and "leak" not in globbed.output
    grepped = await run(registry, "grep", pattern="SECRET")
    assert "no matches" in grepped.output


async def test_grep(registry: ToolRegistry, layout: dict[str, Path]) -> None:
    out = await run(registry, "grep", pattern=r"def \w+")
    assert out.output == "src/app.py:3:def main():"
    assert (await run(registry, "grep", pattern="HELLO", case_sensitive=False)).output == "README.md:1:hello"
    assert (await run(registry, "grep", pattern="o", include="*.md", max_results=1)).output.startswith(
        "README.md:1:hello\n..."
    )
    literal = await run(registry, "grep", pattern="main()", literal=True)
    assert literal.output == "src/app.py:3:def main():"
    bad = await run(registry, "grep", pattern="(")
    assert bad.failed and "literal=true" in bad.output
    single = await run(registry, "grep", pattern="world", path="README.md")
    assert single.output == "README.md:2:world"


# -- races: a component swapped for a symlink while the tool runs ------------------------------
def _race_layout(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "race-ws", tmp_path / "race-out"
    for base, word in ((root, "INSIDE"), (outside, "OUTSIDE")):
        (base / "d").mkdir(parents=True)
        (base / "d" / "f.txt").write_text(f"{word}\n")
        (base / "f.txt").write_text(f"{word}\n")
    return root, outside


def test_symlink_swapped_in_after_resolve_is_refused(tmp_path: Path) -> None:
    root, outside = _race_layout(tmp_path)
    ws = Workspace(root)
    for path in ("d/f.txt", "f.txt"):
        target = ws.resolve(path)  # checked while still a real file/directory
        swapped = root / path.split("/")[0]
        swapped.rename(root / "stash")
        swapped.symlink_to(outside / path.split("/")[0])
        with pytest.raises(WorkspaceViolation, match="replaced by a symlink"):
            os.close(ws.open(target, os.O_RDONLY))
        with pytest.raises(WorkspaceViolation):
            ws.read_bytes(path)
        swapped.unlink()
        (root / "stash").rename(swapped)


def test_racing_symlink_swaps_never_read_or_write_outside(tmp_path: Path) -> None:
    import threading

    from power_loop.tools._files import _FileTools

    root, outside = _race_layout(tmp_path)
    tools = _FileTools(Workspace(root), 30.0)
    done = threading.Event()

    errors: list[BaseException] = []

    def swap(name: str) -> None:
        target, real, link = root / name, root / f"{name}.real", root / f"{name}.link"
        os.replace(target, real)
        link.symlink_to(outside / name)
        try:
            os.replace(link, target)  # atomic; refused when write_file recreated a directory there
        except OSError:
            link.unlink()
        for _ in range(1000):  # put the real one back, clearing what a racing write_file created
            if target.is_symlink():
                target.unlink(missing_ok=True)
            elif target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(real, target)
                return
            except OSError:
                continue
        raise AssertionError(f"could not restore {name}")

    def swapper() -> None:  # swaps a directory and a file for symlinks to the outside, by count
        try:
            for _ in range(200_000):
                if done.is_set():
                    return
                swap("d")
                swap("f.txt")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=swapper)
    thread.start()
    leaked, inside = 0, 0
    try:
        for i in range(400):
            for path in ("d/f.txt", "f.txt"):
                try:
                    out = tools.read_file(path)
                except (OSError, ValueError):
                    continue  # refused or mid-swap: never content
                leaked += "OUTSIDE" in out
                inside += "INSIDE" in out or "planted" in out
            try:
                leaked += "OUTSIDE" in tools.grep("SIDE") + tools.glob("**/*")
            except (OSError, ValueError):
                pass
            for path in (f"d/w{i % 7}.txt", "f.txt", "d/f.txt"):
                try:
                    tools.write_file(path, "planted\n")
                except (OSError, ValueError):
                    pass
    finally:
        done.set()
        thread.join()
    assert not errors and leaked == 0
    assert sorted(p.name for p in (outside / "d").iterdir()) == ["f.txt"]  # nothing written outside
    assert (outside / "f.txt").read_text() == (outside / "d" / "f.txt").read_text() == "OUTSIDE\n"
    assert inside > 0  # the tool kept working between swaps


async def test_grep_catastrophic_pattern_is_stopped_with_a_code(tmp_path: Path) -> None:
    from power_loop.errors import ToolBudgetExceeded

    (tmp_path / "a.txt").write_text("a" * 64 + "!\n")
    reg = ToolRegistry()
    register_file_tools(
        reg, tmp_path, grep_timeout=3.0
    )  # the pattern needs ~2**64 steps: any deadline is hit
    out = await run(reg, "grep", pattern="(a+)+$")
    assert out.failed and isinstance(out.error, ToolBudgetExceeded)
    assert out.error.code == "tool.budget_exceeded" and "literal=true" in out.output
    fine = await run(reg, "grep", pattern="a{3}!")  # quantified but quick: matched by the worker too
    assert not fine.failed and fine.output.startswith("a.txt:1:")


def test_grep_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="grep_timeout"):
        register_file_tools(ToolRegistry(), tmp_path, grep_timeout=0)


async def test_grep_without_an_interpreter_refuses_what_it_cannot_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("a" * 64 + "!\n")
    reg = ToolRegistry()
    register_file_tools(reg, tmp_path, grep_timeout=3.0)
    monkeypatch.setattr(sys, "executable", "")  # an embedded Python: no child to kill at the deadline
    for pattern in ("(a+)+$", "(?:a|a)" * 40 + "b"):
        out = await run(reg, "grep", pattern=pattern)
        assert out.failed and isinstance(out.error, ValueError) and "literal=true" in out.output
    plain = await run(reg, "grep", pattern="a!")  # nothing to backtrack: matched here
    assert not plain.failed and plain.output.startswith("a.txt:1:")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.py", "app.py", True),
        ("*.py", "src/app.py", False),
        ("**/*.py", "app.py", True),
        ("**/*.py", "a/b/app.py", True),
        ("src/**", "src/a/b.txt", True),
        ("**.txt", "a/b.txt", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab]x", "bx", True),
        ("[!ab]x", "bx", False),
        ("[a-c]*", "c.md", True),
        ("[oops", "[oops", True),  # an unclosed bracket is a literal
        ("**/", "a/", True),
        ("", "", True),
    ],
)
def test_glob_syntax(pattern: str, path: str, expected: bool) -> None:
    from power_loop.tools._glob import compile_glob

    assert compile_glob(pattern)(path) is expected


async def test_glob_star_chains_match_in_linear_time(tmp_path: Path) -> None:
    """As regexes these patterns try ~C(90, 30) ways per name (never finishing); matched linearly."""
    (tmp_path / ("a" * 60 + ".txt")).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ("b" * 60)).write_text("x")
    reg = ToolRegistry()
    register_file_tools(reg, tmp_path)
    for pattern in ("*a" * 30 + "x", "*?" * 30 + "x", "**/" + "*b" * 30 + "x", "*a" * 30 + ".txt"):
        out = await run(reg, "glob", pattern=pattern)
        assert not out.failed, out.output
        assert ("a" * 60 + ".txt" in out.output) is pattern.endswith(".txt"), (pattern, out.output)
