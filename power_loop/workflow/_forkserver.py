"""The parent's side of ``SubprocessExecutor(preload=True)``: one zygote process, leaves forked from it.

`ForkServer` starts ``python -m power_loop.workflow.zygote`` lazily (on the first leaf), restarts it
when it died, and asks it for one child per leaf. The child's end is awaited with a pidfd
(``os.pidfd_open`` + ``loop.add_reader``, Linux >= 5.3) or, where there is none, by polling the pid;
the child's result file then decides. A timeout or a cancellation ends the child's process group like
the plain mode does: SIGTERM, then SIGKILL after the grace period. The zygote exits at stdin EOF, so
it never outlives the process that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..llm import CancellationToken

__all__ = ["ForkServer", "signal_group"]

_REPLY_TIMEOUT_S = 300.0
"""How long the zygote may take to answer (its start-up imports included) before it is given up."""

_pidfd_open: Callable[[int], int] | None = getattr(os, "pidfd_open", None)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pgid``, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _ZygoteGone(Exception):
    """The zygote is not there (any more) to answer."""


def _read_line(fd: int, timeout_s: float) -> bytes:
    """One reply line from the zygote's pipe; raises `_ZygoteGone` at EOF or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise _ZygoteGone(f"no answer within {timeout_s:.0f}s")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise _ZygoteGone("it exited")
        data += chunk
    return data


def _tail(log: IO[bytes] | None) -> str:
    if log is None:
        return ""
    log.seek(0)
    lines = log.read().decode(errors="replace").strip().splitlines()[-3:]
    return ": " + " | ".join(lines) if lines else ""


class ForkServer:
    """One zygote and the leaves forked from it (used through `SubprocessExecutor`)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._key: tuple[tuple[str, ...], tuple[tuple[str, str], ...] | None] | None = None
        self._lock = threading.RLock()  # one request and its reply at a time; `close` waits for it

    @property
    def pid(self) -> int | None:
        """The running zygote's pid (None before the first leaf and after `close`)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self, argv: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
        self._stderr = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                start_new_session=True,  # a Ctrl-C meant for the parent does not end it; stdin EOF does
            )
        except OSError as exc:
            raise _ZygoteGone(f"cannot start worker zygote {argv[0]!r}: {exc}")
        self._proc = proc
        assert proc.stdout is not None
        try:
            ready = json.loads(_read_line(proc.stdout.fileno(), _REPLY_TIMEOUT_S))
        except (_ZygoteGone, ValueError) as exc:
            why = _tail(self._stderr) or f": {exc}"
            self._stop()
            raise _ZygoteGone(f"worker zygote did not start{why}")
        if not isinstance(ready, dict) or "ready" not in ready:
            self._stop()
            raise _ZygoteGone(f"worker zygote did not start: unexpected answer {ready!r}")
        return proc

    def _ask(self, proc: subprocess.Popen[bytes], line: bytes) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except OSError as exc:  # it died since the last leaf: the caller starts a new one
            raise _ZygoteGone(f"{type(exc).__name__}: {exc}")
        try:
            reply = json.loads(_read_line(proc.stdout.fileno(), _REPLY_TIMEOUT_S))
        except (_ZygoteGone, ValueError) as exc:  # the request went in: never send it twice
            self._stop()
            raise RuntimeError(f"worker zygote failed while starting the leaf: {exc}")
        if not isinstance(reply, dict):
            raise RuntimeError(f"worker zygote answered {reply!r}")
        return reply

    def spawn(self, argv: list[str], env: dict[str, str] | None, request: dict[str, Any]) -> int:
        """Fork one leaf child from the zygote (started, or restarted, as needed); its pid.

        Blocking: call it from a worker thread. Raises RuntimeError when no child could be started.
        """
        key = (tuple(argv), None if env is None else tuple(sorted(env.items())))
        line = (json.dumps(request) + "\n").encode()
        error = "worker zygote did not start"
        with self._lock:
            if key != self._key:  # a changed environment needs a zygote that has it
                self._stop()
                self._key = key
            for _ in range(2):
                proc = self._proc
                try:
                    if proc is None or proc.poll() is not None:
                        proc = self._start(argv, env)
                    reply = self._ask(proc, line)
                    break
                except _ZygoteGone as exc:
                    self._stop()
                    error = str(exc)
            else:
                raise RuntimeError(error)
        if "pid" not in reply:
            raise RuntimeError(f"worker zygote could not fork: {reply.get('error')}")
        return int(reply["pid"])

    def close(self) -> None:
        """Stop the zygote (stdin EOF; SIGKILL if it lingers). Leaves already forked run on."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def run(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        *,
        job: str,
        result_path: str,
        stop: CancellationToken,
        timeout_s: float | None,
        term_grace_s: float,
    ) -> dict[str, Any]:
        """Run one leaf in a forked child; the worker's frame (``{"ok": False, "error"}`` on failure)."""
        log_path = f"{result_path}.log"
        request = {"job": job, "result": result_path, "log": log_path}
        spawning = asyncio.ensure_future(asyncio.to_thread(self.spawn, argv, env, request))
        try:
            pid = await asyncio.shield(spawning)
        except asyncio.CancelledError:  # the child may still come: end it as soon as it does
            spawning.add_done_callback(_kill_spawned)
            raise
        except RuntimeError as exc:
            return {"ok": False, "error": str(exc)}
        try:
            error = await _await_child(pid, stop, timeout_s, term_grace_s)
        except BaseException:  # cancelled: nothing will read the child's files
            signal_group(pid, signal.SIGKILL)
            _remove(result_path, log_path)
            raise
        return _result(result_path, log_path, pid, error)


def _remove(*paths: str) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _kill_spawned(spawning: asyncio.Future[int]) -> None:
    if not spawning.cancelled() and spawning.exception() is None:
        signal_group(spawning.result(), signal.SIGKILL)


async def _await_child(
    pid: int, stop: CancellationToken, timeout_s: float | None, term_grace_s: float
) -> str | None:
    """Wait for the child's end; on timeout or ``stop``, end its group. The error text, or None."""
    ended = asyncio.ensure_future(_exited(pid))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({ended, stopped}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if ended in done:
        return None
    signal_group(pid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(ended), term_grace_s)
    signal_group(pid, signal.SIGKILL)  # also whatever the leaf left running in its group
    await ended
    return "worker cancelled" if stop.is_cancelled() else f"worker timed out after {timeout_s}s"


async def _exited(pid: int) -> None:
    """Return once process ``pid`` has ended (it is the zygote's child, not ours: no exit status)."""
    if _pidfd_open is not None:
        try:
            fd = _pidfd_open(pid)
        except ProcessLookupError:  # gone already: its result file decides
            return
        except OSError:  # no pidfd on this kernel: poll instead
            pass
        else:
            try:
                await _readable(fd)
            finally:
                os.close(fd)
            return
    delay = 0.005
    while _running(pid):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie has ended; nobody may be left to reap it soon
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _result(result_path: str, log_path: str, pid: int, error: str | None) -> dict[str, Any]:
    """The child's frame from its result file; the log's tail explains a child that left none."""
    log = Path(log_path)
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    except OSError:
        tail = []
    log.unlink(missing_ok=True)
    result = Path(result_path)
    try:
        frame = json.loads(result.read_text())
    except (OSError, ValueError):
        frame = None
    result.unlink(missing_ok=True)
    if error is not None:
        return {"ok": False, "error": error}
    if isinstance(frame, dict):
        return frame
    why = f": {' | '.join(tail)}" if tail else ""
    return {"ok": False, "error": f"worker (pid {pid}) exited without a result{why}"}
