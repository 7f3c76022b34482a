"""``grep``'s bounded matcher.

Python's ``re`` backtracks: a pattern such as ``(a+)+$`` on a line of ``a``'s runs for longer than the
universe, holding the GIL, and no thread can interrupt it. So every pattern with a quantifier is matched
in a child interpreter that is killed when the deadline passes (:class:`ToolBudgetExceeded`,
``tool.budget_exceeded``). An alternation backtracks too, even with no quantifier: ``(a|a)`` written out
thirty times tries 2**30 ways per position. Only patterns with neither (plain text, classes, anchors),
which match in time linear in the pattern at each position, are matched in-process. The input is bounded too: at most ``MAX_SCAN_BYTES`` of file
text per call and the first ``MAX_SCAN_LINE`` characters of each line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ToolBudgetExceeded

__all__ = ["MAX_SCAN_BYTES", "MAX_SCAN_LINE", "search"]

MAX_SCAN_BYTES = 32 * 1024 * 1024
MAX_SCAN_LINE = 10_000
_BACKTRACKING = frozenset("*+?{|")

# One implementation for both places it runs: compiled here for in-process matching and sent verbatim
# to the child interpreter (which starts isolated, without power_loop on its path).
_MATCHER_SOURCE = """
import re

def search(req):
    regex = re.compile(req["pattern"], req["flags"])
    hits = []
    for shown, text in req["files"]:
        for n, line in enumerate(text.splitlines(), 1):
            if regex.search(line[: req["scan"]]):
                hits.append([shown, n, line[: req["width"]]])
                if len(hits) > req["limit"]:
                    return hits
    return hits
"""
_WORKER_SOURCE = _MATCHER_SOURCE + "\nimport json, sys\njson.dump(search(json.load(sys.stdin)), sys.stdout)\n"
_namespace: dict[str, Any] = {}
exec(compile(_MATCHER_SOURCE, "<grep-matcher>", "exec"), _namespace)  # our own constant source
_in_process: Callable[[dict[str, Any]], list[list[Any]]] = _namespace["search"]


def search(
    pattern: str,
    flags: int,
    files: Sequence[tuple[str, str]],
    *,
    limit: int,
    width: int,
    deadline: float,
    literal: bool = False,
) -> list[tuple[str, int, str]]:
    """Up to ``limit + 1`` hits ``(shown, line_number, line)`` of ``pattern`` in ``files``.

    ``literal``: ``pattern`` is escaped plain text (matched in-process whatever its characters).
    Raises ``ToolBudgetExceeded`` when matching takes longer than ``deadline`` seconds.
    """
    request = {
        "pattern": pattern,
        "flags": flags,
        "files": list(files),
        "limit": limit,
        "width": width,
        "scan": MAX_SCAN_LINE,
    }
    if literal or not _BACKTRACKING.intersection(pattern):
        rows = _in_process(request)
    elif sys.executable:
        rows = _in_worker(request, deadline)
    else:  # no interpreter to bound the match in (an embedded Python): refused, never run unbounded
        raise ValueError(
            f"the pattern {pattern!r} has quantifiers or alternatives, which can only be matched in a "
            "separate Python process, and none is available here; pass literal=true"
        )
    return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]


def _in_worker(request: dict[str, Any], deadline: float) -> list[list[Any]]:
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _WORKER_SOURCE],
            input=json.dumps(request).encode("utf-8"),
            capture_output=True,
            timeout=deadline,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise ToolBudgetExceeded(
            "grep",
            f"the pattern {request['pattern']!r} was still matching after {deadline:g} s and was stopped; "
            "avoid nested or repeated quantifiers such as (a+)+ or (a|aa)*, or pass literal=true",
        ) from None
    if done.returncode != 0:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the grep matcher failed: {last[0]}")
    rows: list[list[Any]] = json.loads(done.stdout)
    return rows
