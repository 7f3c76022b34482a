"""Workspace-confined file tools: ``read_file``, ``write_file``, ``edit_file``, ``glob``, ``grep``.

Every path the model gives is resolved by :class:`Workspace`, which refuses ``..`` segments, absolute
paths outside the root and symlinks whose target leaves the root (checked on the real path), raising
:class:`~power_loop.errors.WorkspaceViolation`. The file is then opened by walking from the root one
component at a time without following symlinks (:mod:`._fsafe`), so a component swapped for a symlink
after the check cannot lead outside either. Messages name paths relative to the root, so the host's
directory layout is not revealed to the model. Handlers are plain sync functions: the registry runs
them in a worker thread, keeping file I/O off the event loop.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, WorkspaceViolation
from ._definition import ToolDefinition
from ._fsafe import open_in, read_fd, write_fd
from ._glob import compile_glob
from ._grep import MAX_SCAN_BYTES, search
from ._patch import apply_unified_patch
from ._registry import ToolRegistry
from ._runtime_env import get_runtime_env

__all__ = ["FILE_TOOL_DEFINITIONS", "FILE_TOOL_NAMES", "Workspace", "register_file_tools"]

_MAX_FILE_BYTES = 5 * 1024 * 1024
_DEFAULT_READ_LINES = 2000
_MAX_READ_LINES = 20000
_MAX_DIR_ENTRIES = 200
_MAX_LINE_CHARS = 2000
_MAX_GREP_LINE = 300
_MAX_DIFF_LINES = 200
_DEFAULT_GREP_TIMEOUT = 10.0
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # O_NONBLOCK: a FIFO must not hang the tool
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

    def open(self, real_path: Path, flags: int, *, make_dirs: bool = False) -> int:
        """A descriptor for a path :meth:`resolve` returned, opened without following any symlink.

        Raises ``WorkspaceViolation`` when a component was swapped for a symlink after ``resolve``.
        """
        parts = real_path.relative_to(self.root).parts
        return open_in(self.root, parts, flags, shown=self.display(real_path), make_dirs=make_dirs)

    def read_bytes(self, path: str, max_bytes: int = _MAX_FILE_BYTES) -> tuple[Path, bytes]:
        """The resolved path and content of the regular file at model path ``path``."""
        target = self.resolve(path)
        fd = self.open(target, _READ)
        try:
            return target, read_fd(fd, self.display(target), max_bytes)
        finally:
            os.close(fd)

    def display(self, real_path: Path) -> str:
        """A root-relative spelling of a resolved path, for messages to the model."""
        try:
            rel = real_path.relative_to(self.root)
        except ValueError:
            return real_path.name
        return rel.as_posix() or "."


def _text(data: bytes, shown: str) -> str:
    if b"\x00" in data[:8192]:
        raise ValueError(f"{shown} looks like a binary file; only text files can be read")
    return data.decode("utf-8", errors="replace")


def _list_dir(fd: int, shown: str) -> str:
    with os.scandir(fd) as entries:
        found = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
    lines = [f"{name}/" if is_dir else name for name, is_dir in found[:_MAX_DIR_ENTRIES]]
    if len(found) > _MAX_DIR_ENTRIES:
        lines.append(f"... ({len(found) - _MAX_DIR_ENTRIES} more entries)")
    return f"{shown} is a directory:\n" + "\n".join(lines)


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
            # Containment is checked per file (the walk itself lists by path); a symlink pointing
            # outside, or a directory swapped for one mid-walk, makes the file invisible to the tools.
            if ws.contains(os.path.realpath(full)):
                yield full


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


class _FileTools:
    """The handlers, bound to one workspace, or unbound: then each call uses the workspace of the
    current :class:`RuntimeEnv` (``runtime_env_context``)."""

    def __init__(self, workspace: Workspace | None, grep_timeout: float) -> None:
        self._bound = workspace
        self._seen: dict[Path, Workspace] = {}  # unbound: workspaces already checked, by root
        self.grep_timeout = grep_timeout

    @property
    def ws(self) -> Workspace:
        if self._bound is not None:
            return self._bound
        root = get_runtime_env().require_workspace_dir()
        ws = self._seen.get(root)
        if ws is None:
            if len(self._seen) >= 64:  # many short-lived workspaces: keep the check cache bounded
                self._seen.clear()
            ws = self._seen[root] = Workspace(root)
        return ws

    def read_file(self, path: str, offset: int = 1, limit: int = _DEFAULT_READ_LINES) -> str:
        target = self.ws.resolve(path)
        shown = self.ws.display(target)
        fd = self.ws.open(target, _READ)
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                return _list_dir(fd, shown)
            text = _text(read_fd(fd, shown, _MAX_FILE_BYTES), shown)
        finally:
            os.close(fd)
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
        if target == self.ws.root:
            raise IsADirectoryError(f"{shown} is a directory")
        data = content.encode("utf-8")
        existed = False
        try:
            fd = self.ws.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, make_dirs=True)
        except FileExistsError:
            if not overwrite:
                raise FileExistsError(f"{shown} already exists; pass overwrite=true to replace it") from None
            existed = True
            fd = self._open_existing(target, shown, os.O_WRONLY)
        try:
            write_fd(fd, data)
        finally:
            os.close(fd)
        return f"{'overwrote' if existed else 'created'} {shown} ({len(data)} bytes)"

    def _open_existing(self, target: Path, shown: str, flags: int) -> int:
        """Open an existing file for writing; refuse directories and special files before touching them."""
        try:
            fd = self.ws.open(target, flags | getattr(os, "O_NONBLOCK", 0))
        except IsADirectoryError:
            raise IsADirectoryError(f"{shown} is a directory") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"not a regular file: {shown}")
        return fd

    def edit_file(self, path: str, old_text: str, new_text: str, replace_all: bool = False) -> str:
        target = self.ws.resolve(path)
        shown = self.ws.display(target)
        fd = self._open_existing(target, shown, os.O_RDWR)
        try:
            return self._edit(fd, shown, old_text, new_text, replace_all)
        finally:
            os.close(fd)

    def apply_patch(self, path: str, patch: str) -> str:
        target = self.ws.resolve(path)
        shown = self.ws.display(target)
        fd = self._open_existing(target, shown, os.O_RDWR)
        try:
            bom, crlf, work = self._read_for_edit(fd, shown)
            updated, hunks = apply_unified_patch(work, patch)
            return self._write_edit(
                fd, shown, bom, crlf, work, updated, f"{hunks} hunk{'s' * (hunks != 1)} applied"
            )
        finally:
            os.close(fd)

    def _read_for_edit(self, fd: int, shown: str) -> tuple[bool, bool, str]:
        """``(bom, crlf, LF-normalised text)`` of an open file."""
        raw = _text(read_fd(fd, shown, _MAX_FILE_BYTES), shown)
        bom = raw.startswith("\ufeff")
        text = raw[1:] if bom else raw
        return bom, "\r\n" in text, text.replace("\r\n", "\n")

    def _write_edit(
        self, fd: int, shown: str, bom: bool, crlf: bool, work: str, updated: str, what: str
    ) -> str:
        """Write ``updated`` back in the file's style (BOM, line endings); a diff for the model."""
        out = updated.replace("\n", "\r\n") if crlf else updated
        write_fd(fd, (("\ufeff" if bom else "") + out).encode("utf-8"))
        diff = list(
            difflib.unified_diff(work.splitlines(), updated.splitlines(), shown, shown, lineterm="", n=2)
        )
        if len(diff) > _MAX_DIFF_LINES:
            diff = [*diff[:_MAX_DIFF_LINES], f"... ({len(diff) - _MAX_DIFF_LINES} more diff lines)"]
        return f"edited {shown} ({what})\n" + "\n".join(diff)

    def _edit(self, fd: int, shown: str, old_text: str, new_text: str, replace_all: bool) -> str:
        # Match on LF-normalised text so the model need not reproduce CRLF; write back in the file's style.
        bom, crlf, work = self._read_for_edit(fd, shown)
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
        replaced = f"{count} occurrences" if replace_all and count > 1 else "1 occurrence"
        return self._write_edit(fd, shown, bom, crlf, work, updated, f"{replaced} replaced")

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
        matches_glob = compile_glob(pattern)
        matches: list[tuple[float, str]] = []
        for full in _walk_files(self.ws, base, include_hidden):
            rel = full.relative_to(base).as_posix()
            if matches_glob(rel):
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
        expression = re.escape(pattern) if literal else pattern
        try:
            re.compile(expression, flags)
        except (re.error, RecursionError, OverflowError) as exc:  # bad, too deeply nested, too large a count
            raise ValueError(
                f"invalid regular expression {pattern!r}: {exc}; pass literal=true to search plain text"
            ) from None
        limit = _clamp(max_results, 1, 500)
        files, capped = self._grep_inputs(base, include, include_hidden)
        rows = search(
            expression,
            flags,
            files,
            limit=limit,
            width=_MAX_GREP_LINE,
            deadline=self.grep_timeout,
            literal=literal,
        )
        hits = [f"{shown}:{n}:{line}" for shown, n, line in rows]
        note = (
            f"\n... (stopped after {MAX_SCAN_BYTES} bytes of files; narrow path or include)" if capped else ""
        )
        if not hits:
            return f"no matches for {pattern!r} under {self.ws.display(base)}{note}"
        if len(hits) > limit:
            return "\n".join(hits[:limit]) + "\n... (more matches; raise max_results or narrow the search)"
        return "\n".join(hits) + note

    def _grep_inputs(
        self, base: Path, include: str | None, include_hidden: bool
    ) -> tuple[list[tuple[str, str]], bool]:
        """``(shown, text)`` of the text files to search (at most ``MAX_SCAN_BYTES``), and whether capped."""
        fd = self.ws.open(base, _READ)
        try:
            single = not stat.S_ISDIR(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        paths = [base] if single else _walk_files(self.ws, base, include_hidden)
        files: list[tuple[str, str]] = []
        total = 0
        for full in paths:
            if include and not fnmatch.fnmatch(full.name, include):
                continue
            try:
                _, data = self.ws.read_bytes(str(full))
            except (OSError, ValueError):  # vanished, special, too big, or swapped for a symlink
                continue
            if b"\x00" in data[:8192]:
                continue
            if total + len(data) > MAX_SCAN_BYTES:
                return files, True
            total += len(data)
            files.append((self.ws.display(full), data.decode("utf-8", errors="replace")))
        return files, False


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
            name="apply_patch",
            description=(
                "Apply unified-diff hunks ('@@ -a,b +c,d @@' then ' ' context, '-' removed, '+' added lines) "
                "to one file. A hunk that does not match the file, or matches in several places, is refused "
                "and nothing changes. Line endings and a BOM are preserved. Returns a diff."
            ),
            input_schema={
                "type": "object",
                "properties": {"path": _PATH, "patch": {"type": "string", "minLength": 1}},
                "additionalProperties": False,
            },
            required_params=("path", "patch"),
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
    workspace: Workspace | str | os.PathLike[str] | None,
    *,
    include: Iterable[str] | None = None,
    overwrite: bool = False,
    grep_timeout: float = _DEFAULT_GREP_TIMEOUT,
) -> Workspace | None:
    """Register the file tools (all, or ``include``) confined to ``workspace``; returns the ``Workspace``.

    ``workspace=None`` registers them unbound: each call works in the workspace of the current
    :class:`RuntimeEnv` (``runtime_env_context``), and fails with ``runtime_env.missing`` when there is
    none. ``grep_timeout`` bounds one ``grep`` call's pattern matching, in seconds (``ToolBudgetExceeded``).
    """
    if not grep_timeout > 0:
        raise ConfigError(f"grep_timeout must be a positive number of seconds, got {grep_timeout!r}")
    ws = (
        None if workspace is None else workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    )
    names = tuple(include) if include is not None else FILE_TOOL_NAMES
    unknown = [n for n in names if n not in FILE_TOOL_DEFINITIONS]
    if unknown:
        raise ConfigError(f"unknown file tool(s) {unknown}; available: {', '.join(FILE_TOOL_NAMES)}")
    tools = _FileTools(ws, float(grep_timeout))
    handlers: dict[str, Any] = {
        "read_file": tools.read_file,
        "write_file": tools.write_file,
        "edit_file": tools.edit_file,
        "apply_patch": tools.apply_patch,
        "glob": tools.glob,
        "grep": tools.grep,
    }
    for name in names:
        registry.register(FILE_TOOL_DEFINITIONS[name], handlers[name], overwrite=overwrite)
    return ws
