"""Workspace-confined file tools: ``read_file``, ``write_file``, ``edit_file``, ``glob``, ``grep``.

Every path the model gives is resolved by :class:`Workspace`, which refuses ``..`` segments, absolute
paths outside the root and symlinks whose target leaves the root (checked on the real path), raising
:class:`~power_loop.errors.WorkspaceViolation`. Messages name paths relative to the root, so the host's
directory layout is not revealed to the model. Handlers are plain sync functions: the registry runs
them in a worker thread, keeping file I/O off the event loop.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, WorkspaceViolation
from ._definition import ToolDefinition
from ._registry import ToolRegistry

__all__ = ["FILE_TOOL_DEFINITIONS", "FILE_TOOL_NAMES", "Workspace", "register_file_tools"]

_MAX_FILE_BYTES = 5 * 1024 * 1024
_DEFAULT_READ_LINES = 2000
_MAX_READ_LINES = 20000
_MAX_DIR_ENTRIES = 200
_MAX_LINE_CHARS = 2000
_MAX_GREP_LINE = 300
_MAX_DIFF_LINES = 200
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "build",
        "dist",
    }
)


class Workspace:
    """A directory that confines file tools; :meth:`resolve` maps model paths to real paths inside it."""

    __slots__ = ("root",)

    def __init__(self, root: str | os.PathLike[str]) -> None:
        real = os.path.realpath(os.fspath(root))
        if not os.path.isdir(real):
            raise ConfigError(f"workspace root {os.fspath(root)!r} is not an existing directory")
        self.root = Path(real)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def contains(self, real_path: str | os.PathLike[str]) -> bool:
        """Whether an already-resolved path is the root or lies under it."""
        real = os.fspath(real_path)
        root = str(self.root)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def resolve(self, path: str) -> Path:
        """The real path for ``path`` (relative to the root, or absolute inside it).

        Raises ``WorkspaceViolation`` for ``..`` segments, absolute paths outside the root and
        symlinks (anywhere along the path) that resolve outside the root.
        """
        if not isinstance(path, str) or not path.strip():
            raise WorkspaceViolation(str(path), "an empty path")
        if "\x00" in path:
            raise WorkspaceViolation(path, "it contains a NUL character")
        candidate = Path(path)
        if ".." in candidate.parts:
            raise WorkspaceViolation(path, "'..' segments are not allowed; use a path inside the workspace")
        if candidate.is_absolute():
            if not self.contains(os.path.normpath(path)) and not self.contains(os.path.realpath(path)):
                raise WorkspaceViolation(path, "absolute paths must lie inside the workspace")
        else:
            candidate = self.root / candidate
        real = os.path.realpath(candidate)
        if not self.contains(real):
            raise WorkspaceViolation(
                path, "it resolves (through a symlink) to a location outside the workspace"
            )
        return Path(real)

    def display(self, real_path: Path) -> str:
        """A root-relative spelling of a resolved path, for messages to the model."""
        try:
            rel = real_path.relative_to(self.root)
        except ValueError:
            return real_path.name
        return rel.as_posix() or "."


def _read_text(path: Path, shown: str) -> str:
    if not path.exists():
        raise FileNotFoundError(f"no such file: {shown}")
    if not path.is_file():
        raise IsADirectoryError(f"not a regular file: {shown}")
    size = path.stat().st_size
    if size > _MAX_FILE_BYTES:
        raise ValueError(f"{shown} is {size} bytes; files over {_MAX_FILE_BYTES} bytes are not read")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError(f"{shown} looks like a binary file; only text files can be read")
    return data.decode("utf-8", errors="replace")


def _walk_files(ws: Workspace, base: Path, include_hidden: bool) -> Iterator[Path]:
    """Regular files under ``base``, never following directory symlinks, never leaving the workspace."""
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and (include_hidden or not d.startswith("."))
        )
        for name in sorted(filenames):
            if not include_hidden and name.startswith("."):
                continue
            full = Path(dirpath, name)
            if full.is_symlink() and not ws.contains(os.path.realpath(full)):
                continue  # a file symlink pointing outside: invisible to the tools
            yield full


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


class _FileTools:
    """The handlers, bound to one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def read_file(self, path: str, offset: int = 1, limit: int = _DEFAULT_READ_LINES) -> str:
        target = self.ws.resolve(path)
        shown = self.ws.display(target)
        if target.is_dir():
            entries = sorted(target.iterdir(), key=lambda p: p.name)
            lines = [f"{e.name}/" if e.is_dir() else e.name for e in entries[:_MAX_DIR_ENTRIES]]
            if len(entries) > _MAX_DIR_ENTRIES:
                lines.append(f"... ({len(entries) - _MAX_DIR_ENTRIES} more entries)")
            return f"{shown} is a directory:\n" + "\n".join(lines)
        text = _read_text(target, shown)
        all_lines = text.splitlines()
        start = max(1, offset)
        count = _clamp(limit, 1, _MAX_READ_LINES)
        chunk = all_lines[start - 1 : start - 1 + count]
        if not chunk:
            return f"{shown} has {len(all_lines)} lines; nothing at offset {start}"
        width = len(str(start + len(chunk) - 1))
        body = "\n".join(f"{n:>{width}}\t{line[:_MAX_LINE_CHARS]}" for n, line in enumerate(chunk, start))
        end = start + len(chunk) - 1
        if end < len(all_lines):
            body += f"\n... (lines {start}-{end} of {len(all_lines)}; continue with offset={end + 1})"
        return body

    def write_file(self, path: str, content: str, overwrite: bool = True) -> str:
        target = self.ws.resolve(path)
        shown = self.ws.display(target)
        if target.is_dir():
            raise IsADirectoryError(f"{shown} is a directory")
        existed = target.exists()
        if existed and not overwrite:
            raise FileExistsError(f"{shown} already exists; pass overwrite=true to replace it")
        # Parents are inside the workspace: resolve() already placed ``target`` under the root.
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        target.write_bytes(data)
        return f"{'overwrote' if existed else 'created'} {shown} ({len(data)} bytes)"

    def edit_file(self, path: str, old_text: str, new_text: str, replace_all: bool = False) -> str:
        target = self.ws.resolve(path)
        shown = self.ws.display(target)
        raw = _read_text(target, shown)
        bom = raw.startswith("\ufeff")
        text = raw[1:] if bom else raw
        crlf = "\r\n" in text
        # Match on LF-normalised text so the model need not reproduce CRLF; write back in the file's style.
        work = text.replace("\r\n", "\n")
        old = old_text.replace("\r\n", "\n")
        new = new_text.replace("\r\n", "\n")
        if not old:
            raise ValueError("old_text is empty; give the exact text to replace")
        count = work.count(old)
        if count == 0:
            raise ValueError(f"old_text was not found in {shown}; read the file and copy the text exactly")
        if count > 1 and not replace_all:
            raise ValueError(
                f"old_text occurs {count} times in {shown}; add surrounding lines to make it unique "
                "or pass replace_all=true"
            )
        updated = work.replace(old, new) if replace_all else work.replace(old, new, 1)
        out = updated.replace("\n", "\r\n") if crlf else updated
        target.write_bytes((("\ufeff" if bom else "") + out).encode("utf-8"))
        diff = list(
            difflib.unified_diff(work.splitlines(), updated.splitlines(), shown, shown, lineterm="", n=2)
        )
        if len(diff) > _MAX_DIFF_LINES:
            diff = [*diff[:_MAX_DIFF_LINES], f"... ({len(diff) - _MAX_DIFF_LINES} more diff lines)"]
        replaced = f"{count} occurrences" if replace_all and count > 1 else "1 occurrence"
        return f"edited {shown} ({replaced} replaced)\n" + "\n".join(diff)

    def glob(
        self, pattern: str, path: str = ".", max_results: int = 100, include_hidden: bool = False
    ) -> str:
        base = self.ws.resolve(path)
        if not base.is_dir():
            raise NotADirectoryError(f"{self.ws.display(base)} is not a directory")
        if pattern.startswith(("/", "\\")) or ".." in Path(pattern).parts:
            raise WorkspaceViolation(pattern, "glob patterns must be relative and must not contain '..'")
        if "/" not in pattern and "**" not in pattern:
            pattern = "**/" + pattern  # a bare "*.py" means "anywhere below"
        limit = _clamp(max_results, 1, 500)
        regex = re.compile(_glob_to_regex(pattern))
        matches: list[tuple[float, str]] = []
        for full in _walk_files(self.ws, base, include_hidden):
            rel = full.relative_to(base).as_posix()
            if regex.fullmatch(rel):
                try:
                    mtime = full.stat().st_mtime
                except OSError:
                    continue
                matches.append((mtime, self.ws.display(full)))
        if not matches:
            return f"no files match {pattern!r} under {self.ws.display(base)}"
        matches.sort(key=lambda m: (-m[0], m[1]))  # newest first
        shown = [m[1] for m in matches[:limit]]
        if len(matches) > limit:
            shown.append(f"... ({len(matches) - limit} more; narrow the pattern)")
        return "\n".join(shown)

    def grep(
        self,
        pattern: str,
        path: str = ".",
        include: str | None = None,
        max_results: int = 50,
        literal: bool = False,
        case_sensitive: bool = True,
        include_hidden: bool = False,
    ) -> str:
        base = self.ws.resolve(path)
        flags = 0 if case_sensitive else re.IGNORECASE
        try:
            regex = re.compile(re.escape(pattern) if literal else pattern, flags)
        except re.error as exc:
            raise ValueError(
                f"invalid regular expression {pattern!r}: {exc}; pass literal=true to search plain text"
            )
        limit = _clamp(max_results, 1, 500)
        files = [base] if base.is_file() else _walk_files(self.ws, base, include_hidden)
        hits: list[str] = []
        for full in files:
            if include and not fnmatch.fnmatch(full.name, include):
                continue
            try:
                if full.stat().st_size > _MAX_FILE_BYTES:
                    continue
                data = full.read_bytes()
            except OSError:
                continue
            if b"\x00" in data[:8192]:
                continue
            shown = self.ws.display(full)
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{shown}:{n}:{line[:_MAX_GREP_LINE]}")
                    if len(hits) > limit:
                        break
            if len(hits) > limit:
                break
        if not hits:
            return f"no matches for {pattern!r} under {self.ws.display(base)}"
        if len(hits) > limit:
            return "\n".join(hits[:limit]) + "\n... (more matches; raise max_results or narrow the search)"
        return "\n".join(hits)


def _glob_to_regex(pattern: str) -> str:
    """Translate a ``/``-separated glob with ``**`` into a regex over posix relative paths."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


_STR = {"type": "string"}
_PATH = {"type": "string", "minLength": 1, "description": "Path relative to the workspace root."}

FILE_TOOL_DEFINITIONS: dict[str, ToolDefinition] = {
    d.name: d
    for d in (
        ToolDefinition(
            name="read_file",
            effect="pure",
            description="Read a text file with line numbers (or list a directory). Use offset/limit for long files.",
            input_schema={
                "type": "object",
                "properties": {
                    "path": _PATH,
                    "offset": {
                        "type": "integer",
                        "minimum": 1,
                        "default": 1,
                        "description": "First line (1-based).",
                    },
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": _MAX_READ_LINES,
                        "default": _DEFAULT_READ_LINES,
                    },
                },
                "additionalProperties": False,
            },
            required_params=("path",),
        ),
        ToolDefinition(
            name="write_file",
            effect="idempotent",
            description="Create or overwrite a text file (parent directories are created).",
            input_schema={
                "type": "object",
                "properties": {
                    "path": _PATH,
                    "content": _STR,
                    "overwrite": {"type": "boolean", "default": True},
                },
                "additionalProperties": False,
            },
            required_params=("path", "content"),
        ),
        ToolDefinition(
            name="edit_file",
            description=(
                "Replace exact text in a file. old_text must match exactly once unless replace_all is true. "
                "Line endings and a BOM are preserved. Returns a diff."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "path": _PATH,
                    "old_text": {"type": "string", "minLength": 1},
                    "new_text": _STR,
                    "replace_all": {"type": "boolean", "default": False},
                },
                "additionalProperties": False,
            },
            required_params=("path", "old_text", "new_text"),
        ),
        ToolDefinition(
            name="glob",
            effect="pure",
            description="Find files by glob pattern (e.g. '**/*.py', 'src/*.ts'), newest first.",
            input_schema={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "minLength": 1},
                    "path": {**_PATH, "default": "."},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                    "include_hidden": {"type": "boolean", "default": False},
                },
                "additionalProperties": False,
            },
            required_params=("pattern",),
        ),
        ToolDefinition(
            name="grep",
            effect="pure",
            description="Search file contents with a regular expression; returns 'file:line:text' lines.",
            input_schema={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "minLength": 1},
                    "path": {**_PATH, "default": "."},
                    "include": {
                        "type": "string",
                        "description": "Only files whose name matches this glob, e.g. '*.py'.",
                    },
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    "literal": {"type": "boolean", "default": False},
                    "case_sensitive": {"type": "boolean", "default": True},
                    "include_hidden": {"type": "boolean", "default": False},
                },
                "additionalProperties": False,
            },
            required_params=("pattern",),
        ),
    )
}

#: The file tool names, in registration order.
FILE_TOOL_NAMES: tuple[str, ...] = tuple(FILE_TOOL_DEFINITIONS)


def register_file_tools(
    registry: ToolRegistry,
    workspace: Workspace | str | os.PathLike[str],
    *,
    include: Iterable[str] | None = None,
    overwrite: bool = False,
) -> Workspace:
    """Register the file tools (all, or ``include``) confined to ``workspace``; returns the ``Workspace``."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    names = tuple(include) if include is not None else FILE_TOOL_NAMES
    unknown = [n for n in names if n not in FILE_TOOL_DEFINITIONS]
    if unknown:
        raise ConfigError(f"unknown file tool(s) {unknown}; available: {', '.join(FILE_TOOL_NAMES)}")
    tools = _FileTools(ws)
    handlers: dict[str, Any] = {
        "read_file": tools.read_file,
        "write_file": tools.write_file,
        "edit_file": tools.edit_file,
        "glob": tools.glob,
        "grep": tools.grep,
    }
    for name in names:
        registry.register(FILE_TOOL_DEFINITIONS[name], handlers[name], overwrite=overwrite)
    return ws
