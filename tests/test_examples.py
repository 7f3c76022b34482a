"""Every example in examples/ runs offline, exits cleanly and leaves no files behind (SPEC §7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POWER_LOOP_PROVIDER", "POWER_LOOP_BASE_URL"))
    }
    cwd, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmpdir.mkdir()
    env["TMPDIR"] = str(tmpdir)  # where tempfile puts its files: it must be empty afterwards
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip(), "examples print what they show"
    left = sorted(p.name for p in [*cwd.iterdir(), *tmpdir.iterdir()])
    assert not left, f"the example left files behind: {left}"


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


def test_the_index_lists_every_example() -> None:
    index = (EXAMPLES[0].parent / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\[(\w+\.py)\]\(\1\)", index))
    assert listed == {p.name for p in EXAMPLES}
