"""apply_patch: unified-diff hunks applied strictly (stale or ambiguous hunks refused), via the file tool."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.tools import ToolRegistry, execute_tool_call, register_file_tools
from power_loop.tools._patch import apply_unified_patch, parse_hunks


def _diff(old: str, new: str, n: int = 2) -> str:
    return "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), "a", "b", lineterm="", n=n))


@settings(max_examples=150, deadline=None)
@given(
    old=st.lists(st.sampled_from(["a", "b", "c", "def f():", "    return 1", ""]), max_size=25),
    edits=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["x", "y", None])), max_size=6),
)
def test_a_diff_of_two_texts_turns_one_into_the_other(old: list[str], edits: list) -> None:
    new = list(old)
    for position, replacement in edits:
        if replacement is None:
            if new:
                del new[position % len(new)]
        else:
            new.insert(position % (len(new) + 1), replacement)
    before, after = "\n".join(old) + "\n", "\n".join(new) + "\n"
    patch = _diff(before, after)
    if not patch:
        return
    try:
        result, _ = apply_unified_patch(before, patch)
    except ValueError as exc:  # only ever refused as ambiguous, never applied wrongly
        assert "matches at lines" in str(exc)
        return
    assert result == after


def test_stale_ambiguous_and_malformed_hunks_are_refused() -> None:
    text = "one\ntwo\nthree\n"
    with pytest.raises(ValueError, match="does not match"):
        apply_unified_patch(text, "@@ -1,2 +1,2 @@\n one\n-zwei\n+2\n")
    repeated = "x\ny\nx\ny\n"
    with pytest.raises(ValueError, match="matches at lines 1, 3"):
        apply_unified_patch(repeated, "@@ -2,1 +2,1 @@\n x\n-y\n+Y\n")
    # The header's line number settles an ambiguity when it points at one of the matches.
    assert apply_unified_patch(repeated, "@@ -3,2 +3,2 @@\n x\n-y\n+Y\n")[0] == "x\ny\nx\nY\n"
    with pytest.raises(ValueError, match="no '@@"):
        parse_hunks("just text")
    with pytest.raises(ValueError, match="starts with"):
        parse_hunks("@@ -1 +1 @@\n*bad\n")
    # Insertion at the top and at the end, headers and "no newline" markers skipped.
    assert apply_unified_patch("b\n", "--- a\n+++ b\n@@ -0,0 +1 @@\n+a\n")[0] == "a\nb\n"
    assert apply_unified_patch("a\n", "@@ -1,0 +2 @@\n+b\n\\ No newline at end of file\n")[0] == "a\nb\n"


async def test_the_tool_patches_a_file_in_its_style(tmp_path: Path) -> None:
    registry = ToolRegistry()
    register_file_tools(registry, tmp_path)
    (tmp_path / "m.py").write_bytes("\ufeffdef f():\r\n    return 1\r\n".encode())

    async def call(args: dict) -> tuple[bool, str]:
        call = {
            "id": "1",
            "type": "function",
            "function": {"name": "apply_patch", "arguments": json.dumps(args)},
        }
        outcome = await execute_tool_call(registry, call)
        return outcome.failed, outcome.output

    failed, out = await call(
        {"path": "m.py", "patch": "@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n"}
    )
    assert not failed and out.startswith("edited m.py (1 hunk applied)") and "+    return 2" in out
    assert (tmp_path / "m.py").read_bytes() == "\ufeffdef f():\r\n    return 2\r\n".encode()
    failed, out = await call(
        {"path": "m.py", "patch": "@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 3\n"}
    )
    assert failed and "does not match" in out
    assert (tmp_path / "m.py").read_bytes() == "\ufeffdef f():\r\n    return 2\r\n".encode()  # untouched
    failed, out = await call({"path": "../outside.py", "patch": "@@ -0,0 +1 @@\n+x\n"})
    assert failed and "not allowed" in out
