"""The OS side of background tasks: each task's bounded output file, the watcher that enforces its
timeout and records its end, the :class:`BackgroundSupervisor` of one registration's tasks, and
recognising a task's process group from another process (``POWER_LOOP_BACKGROUND_TASK`` in its
environment). The tools themselves are in ``_background``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._shell import _kill_group

if TYPE_CHECKING:
    from ..store import BackgroundTaskRow, SessionStore

__all__ = [
    "BACKGROUND_TAIL_CHARS",
    "HOST",
    "MAX_BACKGROUND_OUTPUT_BYTES",
    "TASK_MARK",
    "BackgroundSupervisor",
    "LiveTask",
    "OutputFile",
    "process_owner",
    "read_tail",
    "unwatched_status",
]

#: The output file keeps this many bytes from the start of the output, then only a tail.
MAX_BACKGROUND_OUTPUT_BYTES = 1 << 20
#: Characters of output kept in the store and shown by ``check_background``.
BACKGROUND_TAIL_CHARS = 4000
#: Tasks of one session this process runs at once.
_log = logging.getLogger("power_loop.tools")
_KEEP_TAIL_BYTES = 64 * 1024
_DRAIN_GRACE_S = 1.0
# A task run on another host is declared lost this long after its deadline passed unrecorded.
_FOREIGN_GRACE_MS = 60_000
HOST = socket.gethostname()
# Put in every task's environment: lets a later check recognise the task's process by its pid.
TASK_MARK = "POWER_LOOP_BACKGROUND_TASK"
_ENVIRON_READS = 100  # up to ~1 s for a process mid-exec to show its environment


class OutputFile:
    """A process's output on disk: the first ``cap`` bytes, then a tail kept in memory until the end."""

    __slots__ = ("_file", "cap", "dropped", "path", "tail", "written")

    def __init__(self, path: Path, cap: int = MAX_BACKGROUND_OUTPUT_BYTES) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.written = 0
        self.cap = cap
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - self.written
        if room > 0:
            self._file.write(chunk[:room])
            self.written += min(room, len(chunk))
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - _KEEP_TAIL_BYTES
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.add(chunk)

    def text_tail(self, chars: int = BACKGROUND_TAIL_CHARS) -> str:
        """The last ``chars`` characters of the output so far."""
        if self._file.closed:  # the file holds everything kept, the tail included
            return read_tail(self.path, chars)
        if len(self.tail) >= 4 * chars:
            return self.tail[-4 * chars :].decode("utf-8", errors="replace")[-chars:]
        return (read_tail(self.path, chars) + self.tail.decode("utf-8", errors="replace"))[-chars:]

    def close(self) -> None:
        if self._file.closed:
            return
        if self.dropped:
            self._file.write(f"\n... [{self.dropped} bytes truncated] ...\n".encode())
        self._file.write(bytes(self.tail))
        self._file.close()


def read_tail(path: str | Path | None, chars: int = BACKGROUND_TAIL_CHARS) -> str:
    """The last ``chars`` characters of the file at ``path`` (``""`` if it cannot be read)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4 * chars))
            return f.read().decode("utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


@dataclasses.dataclass(slots=True)
class LiveTask:
    session_id: str
    task_id: str
    command: str
    proc: asyncio.subprocess.Process
    read_fd: int
    output: OutputFile
    watcher: asyncio.Future[None] | None = None


class BackgroundSupervisor:
    """The background tasks one ``register_background_tools`` registration started and watches.

    Each registration owns one (``register_background_tools`` returns it): its ``background_run``
    counts the running tasks of a session against :data:`MAX_RUNNING_BACKGROUND_TASKS`, its
    ``check_background`` shows a live task's output tail from memory, and `stop_background_task`
    given it kills a watched task directly. Nothing is shared between registrations or processes;
    a task watched elsewhere is found through its store row and process group.
    """

    def __init__(self) -> None:
        self._live: dict[tuple[str, str], LiveTask] = {}

    def running(self, session_id: str) -> int:
        """How many of the session's tasks this supervisor is watching now."""
        return sum(1 for sid, _ in self._live if sid == session_id)

    def _get(self, session_id: str, task_id: str) -> LiveTask | None:
        return self._live.get((session_id, task_id))

    def _watch(self, live: LiveTask, store: SessionStore, timeout_s: float) -> None:
        self._live[(live.session_id, live.task_id)] = live
        live.watcher = asyncio.ensure_future(_watch(live, store, timeout_s, self._live))

    async def aclose(self) -> int:
        """Kill every watched task's process group and wait until each end is recorded (``killed``);
        returns how many were running."""
        live = list(self._live.values())
        for task in live:
            _kill_group(task.proc)
        await asyncio.gather(*(t.watcher for t in live if t.watcher is not None), return_exceptions=True)
        return len(live)


def _status_of(returncode: int | None) -> str:
    if returncode == 0:
        return "completed"
    if returncode is not None and returncode < 0:  # ended by a signal from outside
        return "killed"
    return f"failed({returncode})"


async def _supervise(live: LiveTask, timeout_s: float) -> tuple[str, int | None]:
    """Wait for the process (killing its group at the timeout) while its output is written."""
    stream = asyncio.StreamReader()
    pipe = os.fdopen(live.read_fd, "rb", buffering=0)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), pipe
    )
    reader = asyncio.ensure_future(live.output.drain(stream))
    try:
        try:
            await asyncio.wait_for(live.proc.wait(), timeout=timeout_s)
            status = _status_of(live.proc.returncode)
        except asyncio.TimeoutError:
            _kill_group(live.proc)
            await live.proc.wait()
            status = "timeout"
        # A child that left the group and still holds the pipe is not waited for beyond the grace.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), timeout=_DRAIN_GRACE_S)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        transport.close()
    return status, live.proc.returncode


async def _watch(
    live: LiveTask, store: SessionStore, timeout_s: float, watched: dict[tuple[str, str], LiveTask]
) -> None:
    status, code = "error", None
    try:
        status, code = await _supervise(live, timeout_s)
    except asyncio.CancelledError:  # the event loop is closing: the task must not outlive it
        status = "killed"
        raise
    finally:
        if live.proc.returncode is None:
            _kill_group(live.proc)
        live.output.close()
        watched.pop((live.session_id, live.task_id), None)
        try:
            await store.upsert_background_task(
                live.session_id,
                task_id=live.task_id,
                command=live.command,
                status=status,
                return_code=code if code is not None else live.proc.returncode,
                output_tail=live.output.text_tail(),
                output_path=str(live.output.path),
            )
        except Exception:  # the store may be closed by now; the next check reports the task lost
            _log.warning("could not record the end of background task %s", live.task_id, exc_info=True)


def process_owner(pid: int | None, task_id: str) -> str:
    """Who has process group ``pid`` on this host: ``"task"`` (the task's own process, recognised by
    the marker in its environment where ``/proc`` shows it), ``"alive"`` (someone; not verifiable),
    ``"other"`` (the pid was reused) or ``"gone"``."""
    if pid is None:
        return "gone"
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:  # exists, owned by another user: not our task's process
        return "other"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":  # ended; its new parent did not reap it
                return "gone"
        environ = _read_environ(pid)
    except (OSError, IndexError):  # no /proc (macOS), or the process just ended
        return "alive"
    if environ is None:
        return "alive"
    return "task" if f"{TASK_MARK}={task_id}".encode() in environ.split(b"\0") else "other"


def _read_environ(pid: int) -> bytes | None:
    """``/proc/<pid>/environ``; None while it stays empty. A process in the middle of ``exec`` (a task
    just started) shows an empty environment for a moment: read again rather than call it another's."""
    for _ in range(_ENVIRON_READS):
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
        if environ:
            return environ
        time.sleep(0.01)
    return None


def unwatched_status(row: BackgroundTaskRow, now: int) -> str | None:
    """The status of a ``running`` row no watcher of this process owns: None while it still runs,
    ``lost`` once its process is gone, ``timeout`` when its own process outlived the deadline
    (the host that watched it died; the group is killed now)."""
    overdue = row.deadline_at is not None and now > row.deadline_at
    if row.host != HOST:  # another machine: only the deadline can tell
        return "lost" if overdue and now > (row.deadline_at or 0) + _FOREIGN_GRACE_MS else None
    owner = process_owner(row.pid, row.task_id)
    if owner in ("gone", "other"):
        return "lost"
    if overdue and owner == "task" and row.pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(row.pid, signal.SIGKILL)
        return "timeout"
    return None
