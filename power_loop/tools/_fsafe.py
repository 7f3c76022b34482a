"""Race-free file access below a workspace root.

:meth:`Workspace.resolve` checks a path *before* the tool touches it; a path component swapped for a
symlink between that check and the ``open`` would still lead outside. So on POSIX every access walks
from a directory descriptor of the root, one component at a time, with ``O_NOFOLLOW`` (``dir_fd=``):
a component that became a symlink fails the walk (``ELOOP``) instead of being followed, and the tool
reports :class:`~power_loop.errors.WorkspaceViolation`. Where ``dir_fd`` is unsupported (Windows) the
resolved path is opened directly.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from ..errors import WorkspaceViolation

__all__ = ["open_in", "read_fd", "write_fd"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_WALK_BY_FD = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd
_RACE = "a component of it was replaced by a symlink while the tool ran"


def _step(parent: int, name: str, shown: str, make_dirs: bool) -> int:
    """Open directory ``name`` under ``parent`` without following a symlink (creating it if asked)."""
    flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
    try:
        return os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        if not make_dirs:
            raise FileNotFoundError(f"no such file or directory: {shown}") from None
    try:
        os.mkdir(name, 0o777, dir_fd=parent)
    except FileExistsError:
        pass  # created concurrently (or a symlink planted): the O_NOFOLLOW open below decides
    return os.open(name, flags, dir_fd=parent)


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode)
    except OSError:
        return False


def open_in(
    root: Path, parts: Sequence[str], flags: int, *, shown: str, make_dirs: bool = False, mode: int = 0o666
) -> int:
    """A descriptor for ``root/parts…`` opened with ``flags``, never through a symlink (POSIX).

    ``parts`` are the components of an already-resolved path relative to ``root`` (``()`` is the root
    itself). ``make_dirs`` creates missing parent directories. A symlink met on the way raises
    ``WorkspaceViolation``; a missing component ``FileNotFoundError`` naming ``shown``.
    """
    if not _WALK_BY_FD:
        full = os.path.join(root, *parts)
        if make_dirs and parts:
            os.makedirs(os.path.dirname(full), exist_ok=True)
        return os.open(full, flags | _CLOEXEC, mode)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    if not parts:
        return fd
    try:
        for name in parts[:-1]:
            try:
                child = _step(fd, name, shown, make_dirs)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, name):
                    raise WorkspaceViolation(shown, _RACE) from None
                raise
            os.close(fd)
            fd = child
        try:
            return os.open(parts[-1], flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_link(fd, parts[-1])):
                raise WorkspaceViolation(shown, _RACE) from None
            if isinstance(exc, FileNotFoundError):
                raise FileNotFoundError(f"no such file: {shown}") from None
            raise
    finally:
        os.close(fd)


def read_fd(fd: int, shown: str, max_bytes: int) -> bytes:
    """All bytes of the regular file open as ``fd`` (at most ``max_bytes``, else ``ValueError``)."""
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{shown} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"not a regular file: {shown}")
    if info.st_size > max_bytes:
        raise ValueError(f"{shown} is {info.st_size} bytes; files over {max_bytes} bytes are not read")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:  # grew while being read
            raise ValueError(f"{shown} is over {max_bytes} bytes; files that large are not read")
        chunks.append(chunk)


def write_fd(fd: int, data: bytes) -> None:
    """Replace the whole content of the regular file open (writable) as ``fd`` with ``data``."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.write(fd, view[offset:])
