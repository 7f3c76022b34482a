"""The README is the front door: its runnable snippets run, and its two commands are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = [block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "asyncio.run(" in block]


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_readme_snippet_runs(code: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_readme_names_both_commands() -> None:
    assert len(SNIPPETS) >= 2
    main = re.search(r"<!-- main-command -->\n```bash\n(.*?)\n```", README)
    test = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", README)
    assert main and "python -m power_loop demo" in main.group(1)
    assert test and "pytest" in test.group(1)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci, ".ci/run must run exactly the README's test command"
