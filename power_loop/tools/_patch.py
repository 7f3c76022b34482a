"""Applying unified-diff hunks to a text, strictly: a hunk that does not match, or matches in more
than one place it could mean, is refused rather than guessed at."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Hunk", "apply_unified_patch", "parse_hunks"]

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    """One ``@@ -a,b +c,d @@`` block: the lines it expects (``old``) and the lines it leaves (``new``)."""

    old_start: int
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


def parse_hunks(patch: str) -> list[Hunk]:
    """The hunks of a unified diff (``---``/``+++`` headers and text before the first ``@@`` are skipped).

    A blank line inside a hunk counts as an empty context line (a common slip when diffs are typed).
    Raises ``ValueError`` when there is no hunk or a hunk line has no ``' '``, ``-`` or ``+`` prefix.
    """
    hunks: list[Hunk] = []
    current: Hunk | None = None
    # Trailing newlines end the patch; they are not blank context lines.
    for number, line in enumerate(patch.replace("\r\n", "\n").rstrip("\n").split("\n"), start=1):
        header = _HEADER.match(line)
        if header:
            current = Hunk(old_start=int(header.group(1)))
            hunks.append(current)
            continue
        if current is None or line.startswith("\\"):  # preamble, or "\ No newline at end of file"
            continue
        if line.startswith(("--- ", "+++ ")) and not current.old and not current.new:
            continue
        tag, body = (line[:1], line[1:]) if line else (" ", "")
        if tag == " ":
            current.old.append(body)
            current.new.append(body)
        elif tag == "-":
            current.old.append(body)
        elif tag == "+":
            current.new.append(body)
        else:
            raise ValueError(
                f"patch line {number} starts with {tag!r}; hunk lines start with ' ', '-' or '+'"
            )
    while hunks and not hunks[-1].old and not hunks[-1].new:
        hunks.pop()
    if not hunks:
        raise ValueError("the patch has no '@@ -a,b +c,d @@' hunk")
    return hunks


def _positions(lines: list[str], block: list[str], start: int) -> list[int]:
    width = len(block)
    return [i for i in range(start, len(lines) - width + 1) if lines[i : i + width] == block]


def apply_unified_patch(text: str, patch: str) -> tuple[str, int]:
    """``text`` with every hunk of ``patch`` applied in order; returns ``(new_text, hunks_applied)``.

    Each hunk's expected lines must appear exactly once after the previous hunk, or, if several times,
    exactly at the line its header names (shifted by what earlier hunks added or removed). Otherwise a
    ``ValueError`` says which hunk is stale or ambiguous; nothing is applied.
    """
    trailing_newline = text.endswith("\n")
    lines = text.split("\n")
    if trailing_newline:
        lines.pop()
    cursor, shift = 0, 0
    hunks = parse_hunks(patch)
    for index, hunk in enumerate(hunks, start=1):
        stated = max(0, hunk.old_start - 1 + shift) if hunk.old else max(0, hunk.old_start + shift)
        if not hunk.old:  # pure insertion at the stated line
            at = min(stated, len(lines))
        else:
            found = _positions(lines, hunk.old, cursor)
            if not found:
                raise ValueError(
                    f"hunk {index} (@@ -{hunk.old_start}) does not match the file: its context or removed lines "
                    "are not there (read the file again and rebuild the patch)"
                )
            if len(found) > 1 and stated not in found:
                raise ValueError(
                    f"hunk {index} (@@ -{hunk.old_start}) matches at lines "
                    f"{', '.join(str(p + 1) for p in found[:5])}; add context lines or fix the line number"
                )
            at = stated if len(found) > 1 else found[0]
        lines[at : at + len(hunk.old)] = hunk.new
        cursor = at + len(hunk.new)
        shift += len(hunk.new) - len(hunk.old)
    out = "\n".join(lines)
    return (out + "\n" if trailing_newline or (not text and out) else out), len(hunks)
