"""The ``bash`` tool and the :class:`ShellBackend` seam it runs through.

.. warning::

   ``bash`` is **not a security boundary**. A shell command can read, write and delete anything the
   process running it may touch, open network connections and start daemons; the workspace only
   sets its working directory. Confinement is the *backend's* job: implement :class:`ShellBackend`
   to run commands in a container, VM or jail (``docker exec``, ``bwrap``, ``nsjail``, ``ssh``...).
   The file tools (``read_file``, ``write_file``, ...) are the confined ones.

Each call starts a fresh process: ``launch_argv(workspace) + ["-c", command]`` in its own process
group, so a timeout (or a cancelled send) kills the command *and* everything it spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._definition import ToolDefinition, ToolHandlerResult
from ._files import Workspace
from ._registry import ToolRegistry
from ._runtime_env import get_runtime_env

__all__ = [
    "BASH_TOOL_DEFINITION",
    "DEFAULT_SHELL_BACKEND",
    "DEFAULT_SHELL_TIMEOUT_S",
    "MAX_SHELL_OUTPUT_CHARS",
    "MAX_SHELL_TIMEOUT_S",
    "LocalShellBackend",
    "ShellBackend",
    "register_bash_tool",
    "run_shell_command",
]

DEFAULT_SHELL_TIMEOUT_S = 120
MAX_SHELL_TIMEOUT_S = 600
#: The model sees at most this many characters of a command's output (head + tail).
MAX_SHELL_OUTPUT_CHARS = 50_000
_HEAD_CHARS = 10_000  # the rest of the budget goes to the tail, where errors and summaries usually are
# Bytes kept in memory while a command runs: a runaway `yes` must not exhaust the host's memory.
_KEEP_HEAD_BYTES = 4 * _HEAD_CHARS
_KEEP_TAIL_BYTES = 4 * (MAX_SHELL_OUTPUT_CHARS - _HEAD_CHARS)
# After the shell exits, wait this long for a backgrounded child that still holds the output pipe.
_DRAIN_GRACE_S = 1.0


@runtime_checkable
class ShellBackend(Protocol):
    """Where and how ``bash`` commands run. The command is appended as ``-c <command>`` to the argv.

    Implement it to route commands into a sandbox, e.g. ``["docker", "exec", "-i", "box", "bash"]``
    with ``launch_cwd`` returning ``None`` (the container has its own working directory).
    """

    def launch_argv(self, workspace_dir: Path) -> list[str]:
        """The shell's argv (without ``-c <command>``)."""
        ...

    def launch_cwd(self, workspace_dir: Path) -> str | None:
        """The host working directory for the process (``None``: the current one)."""
        ...

    def launch_env(self, workspace_dir: Path) -> dict[str, str]:
        """The complete environment of the process."""
        ...


class LocalShellBackend:
    """Runs ``/bin/bash --norc --noprofile -c <command>`` on this host, in the workspace directory.

    Not a sandbox: the command has the full rights of this process (see the module docstring).
    """

    __slots__ = ("bash_path", "extra_env")

    def __init__(self, *, bash_path: str = "/bin/bash", extra_env: Mapping[str, str] | None = None) -> None:
        self.bash_path = bash_path
        self.extra_env = dict(extra_env or {})

    def __repr__(self) -> str:
        return f"LocalShellBackend(bash_path={self.bash_path!r})"

    def launch_argv(self, workspace_dir: Path) -> list[str]:
        return [self.bash_path, "--norc", "--noprofile"]

    def launch_cwd(self, workspace_dir: Path) -> str | None:
        return str(workspace_dir)

    def launch_env(self, workspace_dir: Path) -> dict[str, str]:
        # Plain output: no colour escapes or pagers that would waste the model's context.
        return {**os.environ, "TERM": "dumb", "NO_COLOR": "1", **self.extra_env}


#: The backend ``bash`` uses when none is given.
DEFAULT_SHELL_BACKEND = LocalShellBackend()


class _Capture:
    """Collects a stream's bytes, keeping only a bounded head and tail."""

    __slots__ = ("dropped", "head", "tail")

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = _KEEP_HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - _KEEP_TAIL_BYTES
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.add(chunk)

    def text(self, limit: int = MAX_SHELL_OUTPUT_CHARS) -> str:
        """The output, cut to ``limit`` characters by removing the middle (the cut is marked)."""
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.dropped and len(head) + len(tail) <= limit:
            return head + tail
        whole = head + tail
        kept_tail = limit - _HEAD_CHARS
        # Bytes dropped while streaming are counted as characters: exact for ASCII, close otherwise.
        omitted = len(whole) - limit + self.dropped
        return f"{whole[:_HEAD_CHARS]}\n... [{omitted} characters truncated] ...\n{whole[-kept_tail:]}"


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_shell_command(
    command: str,
    workspace_dir: Path,
    *,
    backend: ShellBackend | None = None,
    timeout_s: float = DEFAULT_SHELL_TIMEOUT_S,
) -> ToolHandlerResult:
    """Run ``command`` through ``backend``; the result holds stdout+stderr (merged, truncated) and the exit code.

    ``ok`` is True only for exit code 0. On timeout the whole process group is killed and the
    output so far is returned with a ``[timed out ...]`` line. Cancellation kills it too.
    """
    chosen = backend if backend is not None else DEFAULT_SHELL_BACKEND
    argv = [*chosen.launch_argv(workspace_dir), "-c", command]
    started = await _spawn_uncancelled(argv, chosen, workspace_dir)
    if isinstance(started, ToolHandlerResult):
        return started
    proc, read_fd = started
    capture = _Capture()
    timed_out, detached = await _wait_and_drain(proc, read_fd, capture, timeout_s)
    output = capture.text().rstrip("\n") or "(no output)"
    if detached:
        output += "\n[background processes still hold the output; their further output is discarded]"
    if timed_out:
        return ToolHandlerResult(
            ok=False,
            content=f"{output}\n[timed out after {timeout_s:g}s; the command and its children were killed]",
            data={"timed_out": True, "exit_code": None},
        )
    code = proc.returncode
    return ToolHandlerResult(ok=code == 0, content=f"{output}\n[exit code: {code}]", data={"exit_code": code})


async def _spawn_uncancelled(
    argv: list[str], backend: ShellBackend, workspace_dir: Path
) -> tuple[asyncio.subprocess.Process, int] | ToolHandlerResult:
    """:func:`_spawn`, finished even when the caller is cancelled meanwhile: the shell may already be
    running its command, so it is then started to the end and its whole process group killed (asyncio
    alone would kill only the shell, leaving its children running)."""
    spawning = asyncio.ensure_future(_spawn(argv, backend, workspace_dir))
    try:
        return await asyncio.shield(spawning)
    except asyncio.CancelledError:
        started = await spawning
        if not isinstance(started, ToolHandlerResult):
            proc, read_fd = started
            _kill_group(proc)
            await proc.wait()
            os.close(read_fd)
        raise


async def _spawn(
    argv: list[str], backend: ShellBackend, workspace_dir: Path
) -> tuple[asyncio.subprocess.Process, int] | ToolHandlerResult:
    """Start the shell writing stdout and stderr into a new pipe: ``(process, read end)``, or the error."""
    # Our own pipe rather than asyncio's PIPE: asyncio's ``wait()`` also waits for the pipes to close,
    # which a backgrounded child (``server &``) may never do; with our own pipe we decide how long to
    # keep reading after the shell itself has exited.
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,  # one interleaved stream, in the order it was written
            cwd=backend.launch_cwd(workspace_dir),
            env=backend.launch_env(workspace_dir),
            start_new_session=True,  # its own process group, so a timeout can kill every descendant
        )
    except OSError as exc:
        os.close(read_fd)
        return ToolHandlerResult(ok=False, content=f"Error: could not start the shell {argv[0]!r}: {exc}")
    finally:
        os.close(write_fd)
    return proc, read_fd


async def _wait_and_drain(
    proc: asyncio.subprocess.Process, read_fd: int, capture: _Capture, timeout_s: float
) -> tuple[bool, bool]:
    """Wait for the shell (killing its group on timeout or cancellation) while ``capture`` reads the
    pipe; returns ``(timed_out, detached)``, detached when descendants still held the pipe open."""
    stream = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
    )
    reader = asyncio.ensure_future(capture.drain(stream))
    timed_out = detached = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
            _kill_group(proc)
            await proc.wait()
        # Output still in the pipe arrives at once; a child that left the process group and still
        # holds the pipe open is not waited for beyond the grace period.
        try:
            await asyncio.wait_for(asyncio.shield(reader), timeout=_DRAIN_GRACE_S)
        except asyncio.TimeoutError:
            detached = True
    finally:
        if proc.returncode is None:  # cancelled while running
            _kill_group(proc)
            await proc.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        transport.close()
    return timed_out, detached


BASH_TOOL_DEFINITION = ToolDefinition(
    name="bash",
    description=(
        "Run a shell command with bash in the workspace directory and return its combined stdout and "
        "stderr (long output is truncated in the middle) and exit code. Each call is a fresh shell: "
        "cd and variables do not persist between calls. Commands are killed after `timeout` seconds. "
        "Redirect the output of background jobs to a file (`cmd > log 2>&1 &`)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "description": "The bash command line to run."},
            "timeout": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_SHELL_TIMEOUT_S,
                "default": DEFAULT_SHELL_TIMEOUT_S,
                "description": f"Seconds before the command is killed (1-{MAX_SHELL_TIMEOUT_S}).",
            },
        },
        "additionalProperties": False,
    },
    required_params=("command",),
)


def register_bash_tool(
    registry: ToolRegistry,
    workspace: Workspace | str | os.PathLike[str] | None,
    *,
    backend: ShellBackend | None = None,
    overwrite: bool = False,
) -> None:
    """Register ``bash`` running in ``workspace`` through ``backend`` (default :class:`LocalShellBackend`).

    ``workspace=None`` registers it unbound: each call runs in the current :class:`RuntimeEnv`'s
    workspace, through its ``shell_backend`` when it names one. Not a security boundary: pass a
    sandboxing backend to confine commands.
    """
    bound = (
        None
        if workspace is None
        else (workspace if isinstance(workspace, Workspace) else Workspace(workspace)).root
    )

    async def bash(command: str, timeout: int = DEFAULT_SHELL_TIMEOUT_S) -> ToolHandlerResult:
        if bound is not None:
            return await run_shell_command(command, bound, backend=backend, timeout_s=timeout)
        env = get_runtime_env()
        root = Workspace(env.require_workspace_dir()).root
        chosen = env.shell_backend if env.shell_backend is not None else backend
        return await run_shell_command(command, root, backend=chosen, timeout_s=timeout)

    registry.register(BASH_TOOL_DEFINITION, bash, overwrite=overwrite)
