"""Every ```python block of README.md and docs/**/*.md runs, offline, in a fresh interpreter.

A block is a complete program unless the line before it marks it:

* ``<!-- continue -->`` — it continues the previous block (they run together as one program);
* ``<!-- no-run: REASON -->`` — it is not run (a real provider, a fragment of a signature...): the
  reason is required, and skips are kept rare.

Blocks may use a top-level ``await`` (they then run as in ``python -m asyncio``). Each program runs in an
empty temporary directory with no ``POWER_LOOP_*`` settings, so relative SQLite files land there and
nothing is left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_MARK = re.compile(r"<!--\s*(continue|no-run:\s*(?P<reason>.*?))\s*-->\s*$")

# Runs one program; a top-level `await` makes the compiled code a coroutine, driven by asyncio.run.
_RUNNER = """
import ast, asyncio, sys, types
src = sys.stdin.read()
code = compile(src, "<doc block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
ns = {"__name__": "__main__"}
result = eval(code, ns)
if isinstance(result, types.CoroutineType):
    asyncio.run(result)
"""


@dataclass
class Program:
    """One runnable unit: a complete block plus the blocks marked as its continuations."""

    source: str
    line: int
    code: str
    blocks: int = 1

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


def _marker(text: str, start: int) -> re.Match[str] | None:
    before = text[:start].rstrip("\n").rsplit("\n", 1)[-1]
    return _MARK.search(before)


def collect() -> tuple[list[Program], list[tuple[str, str]]]:
    """(programs to run, skipped blocks as (location, reason))."""
    programs: list[Program] = []
    skipped: list[tuple[str, str]] = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(ROOT).as_posix()
        last: Program | None = None
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            mark = _marker(text, m.start())
            if mark and mark.group("reason") is not None:
                skipped.append((f"{name}:{line}", mark.group("reason")))
                continue
            if mark and last is not None:
                last.code += "\n" + m.group(1)
                last.blocks += 1
                continue
            if mark:
                raise AssertionError(f"{name}:{line}: <!-- continue --> with no block before it")
            last = Program(name, line, m.group(1))
            programs.append(last)
    return programs, skipped


PROGRAMS, SKIPPED = collect()


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.id for p in PROGRAMS])
def test_doc_block_runs(program: Program, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWER_LOOP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=program.code,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{program.id}\n{proc.stdout}\n{proc.stderr}"


def test_skips_are_rare_and_justified() -> None:
    for where, reason in SKIPPED:
        assert len(reason.strip()) >= 10, f"{where}: a no-run block needs a reason"
    executed = sum(p.blocks for p in PROGRAMS)
    assert executed >= 3 * len(SKIPPED), f"{len(SKIPPED)} skipped blocks for {executed} executed"
