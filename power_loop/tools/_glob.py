"""``glob``'s pattern matcher, in time linear in the path for any pattern.

A glob translated to a regular expression backtracks: ``*`` becomes ``[^/]*`` and thirty of them before
an ``x`` try every way of splitting a name that has no ``x`` — longer than the universe. So the pattern
is matched as a set of positions advanced together one character at a time (a Thompson simulation),
which never backtracks: at most ``len(pattern) * len(path)`` steps.

Syntax, over ``/``-separated relative paths: ``*`` (any run of characters but ``/``), ``?`` (one
character but ``/``), ``[abc]`` / ``[a-z]`` / ``[!abc]`` (one character of a set), ``**`` (any run of
characters, ``/`` included) and ``**/`` (nothing, or any run of whole directories).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["compile_glob"]

_LIT, _ONE, _SET, _STAR, _ANY, _DIRS = range(6)
# A token: (kind, payload). The payload of _LIT is its character, of _SET a compiled one-character class.
_Token = tuple[int, "str | re.Pattern[str] | None"]


def _tokens(pattern: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append((_DIRS, None))
            i += 3
        elif pattern.startswith("**", i):
            out.append((_ANY, None))
            i += 2
        elif pattern[i] in "*?":
            out.append((_STAR if pattern[i] == "*" else _ONE, None))
            i += 1
        elif pattern[i] == "[" and pattern.find("]", i + 1) != -1:
            end = pattern.find("]", i + 1)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            try:
                out.append((_SET, re.compile(f"[{body}]")))
            except (re.error, RecursionError) as exc:
                raise ValueError(
                    f"invalid character set [{pattern[i + 1 : end]}] in glob pattern: {exc}"
                ) from None
            i = end + 1
        else:
            out.append((_LIT, pattern[i]))
            i += 1
    return out


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A predicate: does the whole posix relative path match ``pattern``? (``ValueError``: a bad set.)"""
    tokens = _tokens(pattern)
    end = len(tokens)

    def closure(states: set[tuple[int, bool]]) -> set[tuple[int, bool]]:
        # (i, False): about to match token i; (i, True): inside the directories a _DIRS token i spans.
        todo = list(states)
        while todo:
            i, inside = todo.pop()
            if inside or i == end or tokens[i][0] not in (_STAR, _ANY, _DIRS):
                continue
            for state in ((i + 1, False), (i, True)) if tokens[i][0] == _DIRS else ((i + 1, False),):
                if state not in states:
                    states.add(state)
                    todo.append(state)
        return states

    def step(states: set[tuple[int, bool]], ch: str) -> set[tuple[int, bool]]:
        out: set[tuple[int, bool]] = set()
        for i, inside in states:
            if i == end:
                continue
            kind, payload = tokens[i]
            if inside:  # _DIRS spanning ".*/": stay, and a "/" may end it
                out.add((i, True))
                if ch == "/":
                    out.add((i + 1, False))
            elif kind == _ANY or (kind == _STAR and ch != "/"):
                out.add((i, False))
            elif (
                (kind == _LIT and ch == payload)
                or (kind == _ONE and ch != "/")
                or (kind == _SET and isinstance(payload, re.Pattern) and payload.fullmatch(ch))
            ):
                out.add((i + 1, False))
        return closure(out)

    def matches(path: str) -> bool:
        states = closure({(0, False)})
        for ch in path:
            states = step(states, ch)
            if not states:
                return False
        return (end, False) in states

    return matches
