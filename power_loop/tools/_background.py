"""The ``background_run`` and ``check_background`` tools: durable background tasks.

``background_run`` starts the command as its own OS process (its own process group, through the
:class:`ShellBackend` that also runs ``bash``) in the workspace and returns at once with a task id.
The process's output goes to a bounded file (the first :data:`MAX_BACKGROUND_OUTPUT_BYTES`, then only
a tail); its status and exit code go to the session store (``background_tasks``). A watcher in this
process enforces the timeout (the whole group is killed) and records the end: ``completed``,
``failed(<rc>)``, ``timeout``, ``error`` or ``killed``. A task whose process vanished without an
end being recorded (the host process was killed, say) is reported ``lost`` by the next check —
never ``running`` forever. Finished tasks reach the model through ``BackgroundRuntimeProjector``
(``power_loop.loop``), which uses :func:`collect_background_updates`.

Like ``bash``, this is **not a security boundary**: confinement is the shell backend's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from ..base import get_tool_runtime_context
from ..errors import ConfigError, JobNotFoundError, JobNotStoppable
from ._background_proc import (
    HOST,
    TASK_MARK,
    BackgroundSupervisor,
    LiveTask,
    OutputFile,
    process_owner,
    read_tail,
    unwatched_status,
)
from ._definition import ToolDefinition, ToolHandlerResult
from ._files import Workspace
from ._registry import ToolRegistry
from ._runtime_env import get_runtime_env
from ._shell import DEFAULT_SHELL_BACKEND, ShellBackend, _kill_group

if TYPE_CHECKING:  # the store loads only for loops that run background tasks
    from ..store import BackgroundTaskRow, SessionStore

__all__ = [
    "BACKGROUND_RUN_DEFINITION",
    "BACKGROUND_TOOL_NAMES",
    "CHECK_BACKGROUND_DEFINITION",
    "DEFAULT_BACKGROUND_TIMEOUT_S",
    "BackgroundSupervisor",
    "collect_background_updates",
    "register_background_tools",
    "render_background_updates",
    "stop_background_task",
]

DEFAULT_BACKGROUND_TIMEOUT_S = 300
MAX_RUNNING_BACKGROUND_TASKS = 8
BACKGROUND_TOOL_NAMES: tuple[str, ...] = ("background_run", "check_background")


async def _reconcile(
    store: SessionStore, row: BackgroundTaskRow, supervisor: BackgroundSupervisor | None = None
) -> BackgroundTaskRow:
    """``row`` as it stands now: a live task's current output tail, or its end once its process is
    gone (``lost``) or overdue (``timeout``)."""
    if row.finished:
        return row
    live = None if supervisor is None else supervisor._get(row.session_id, row.task_id)
    if live is not None:
        return dataclasses.replace(row, output_tail=live.output.text_tail())
    verdict = unwatched_status(row, time.time_ns() // 1_000_000)
    if verdict is None:
        return dataclasses.replace(row, output_tail=read_tail(row.output_path))
    await store.upsert_background_task(
        row.session_id,
        task_id=row.task_id,
        command=row.command,
        status=verdict,
        output_tail=read_tail(row.output_path),
        output_path=row.output_path,
    )
    found = await store.get_background_task(row.session_id, row.task_id)
    return found if found is not None else row


async def stop_background_task(
    store: SessionStore, session_id: str, task_id: str, *, supervisor: BackgroundSupervisor | None = None
) -> bool:
    """Kill a running task's process group (what ``loop.stop_job(sid, "bg:<id>")`` does): True when it
    was killed, False when it had already ended (or its process was gone: it is then recorded ``lost``).

    A task ``supervisor`` watches is killed and its watcher records ``killed``; any other task on this
    host (another registration's, another process's) is killed after checking the process group is the task's own (the marker in
    its environment) and recorded ``killed`` here. Raises :class:`~power_loop.errors.JobNotFoundError`
    for an unknown task and :class:`~power_loop.errors.JobNotStoppable` for one on another host (or
    whose process cannot be verified)."""
    job_id = f"bg:{task_id}"
    row = await store.get_background_task(session_id, task_id)
    if row is None:
        raise JobNotFoundError(session_id, job_id)
    if row.finished:
        return False
    live = None if supervisor is None else supervisor._get(session_id, task_id)
    if live is not None:
        _kill_group(live.proc)
        return True
    if row.host != HOST:
        raise JobNotStoppable(session_id, job_id, f"it runs on host {row.host}")
    owner = process_owner(row.pid, task_id)
    if owner == "alive":
        raise JobNotStoppable(session_id, job_id, f"process group {row.pid} cannot be verified as the task's")
    if owner == "task" and row.pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(row.pid, signal.SIGKILL)
    status = "killed" if owner == "task" else "lost"
    await store.upsert_background_task(
        session_id,
        task_id=task_id,
        command=row.command,
        status=status,
        output_tail=read_tail(row.output_path),
        output_path=row.output_path,
    )
    return status == "killed"


async def collect_background_updates(
    store: SessionStore, session_id: str, *, mark_seen: bool = True
) -> list[BackgroundTaskRow]:
    """The session's tasks that finished since it was last shown them (``lost`` ones included), oldest
    first; with ``mark_seen`` they are marked shown, so each finish is delivered once."""
    rows = [await _reconcile(store, row) for row in await store.list_unseen_background_updates(session_id)]
    done = [row for row in rows if row.finished]
    if done and mark_seen:
        await store.mark_background_seen(session_id, [row.task_id for row in done])
    return done


def _task_xml(row: BackgroundTaskRow) -> str:
    code = "" if row.return_code is None else f" return_code={quoteattr(str(row.return_code))}"
    tail = escape((row.output_tail or "").rstrip("\n"))
    return (
        f"<task id={quoteattr(row.task_id)} status={quoteattr(row.status)}{code}>\n"
        f"<command>{escape(row.command)}</command>\n<output_tail>{tail}</output_tail>\n</task>"
    )


def render_background_updates(rows: Sequence[BackgroundTaskRow]) -> str:
    """The model-facing ``<background_updates>`` block for finished tasks."""
    return "<background_updates>\n" + "\n".join(_task_xml(row) for row in rows) + "\n</background_updates>"


def _describe(row: BackgroundTaskRow) -> str:
    code = "" if row.return_code is None else f", exit code {row.return_code}"
    placeholder = "(no output)" if row.finished else "(no output yet)"
    tail = (row.output_tail or "").rstrip("\n") or placeholder
    return f"Task {row.task_id}: {row.status}{code}\nCommand: {row.command}\nOutput (tail):\n{tail}"


def _context() -> tuple[str, SessionStore]:
    ctx = get_tool_runtime_context(required=True)
    if ctx.store is None:
        raise ConfigError("this tool needs a session store (run it through StatefulAgentLoop)")
    return ctx.session_id, ctx.store


async def _spawn(
    command: str, workspace_dir: Path, backend: ShellBackend, task_id: str, write_fd: int
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *backend.launch_argv(workspace_dir),
        "-c",
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=write_fd,
        stderr=write_fd,  # one interleaved stream, in the order it was written
        cwd=backend.launch_cwd(workspace_dir),
        env={**backend.launch_env(workspace_dir), TASK_MARK: task_id},
        start_new_session=True,  # its own process group: a timeout kills every descendant
    )


async def start_background_task(
    command: str,
    workspace_dir: Path,
    *,
    session_id: str,
    store: SessionStore,
    backend: ShellBackend | None = None,
    timeout_s: float = DEFAULT_BACKGROUND_TIMEOUT_S,
    output_dir: Path,
    supervisor: BackgroundSupervisor,
) -> BackgroundTaskRow:
    """Start ``command`` as a background task of the session watched by ``supervisor`` and record it;
    returns its row (status ``error`` when the process could not be started)."""
    chosen = backend if backend is not None else DEFAULT_SHELL_BACKEND
    task_id = "bg_" + secrets.token_hex(6)
    os.makedirs(output_dir, mode=0o700, exist_ok=True)
    output = OutputFile(output_dir / f"{task_id}.log")
    path = str(output.path)
    read_fd, write_fd = os.pipe()
    try:
        proc = await _spawn(command, workspace_dir, chosen, task_id, write_fd)
    except OSError as exc:
        os.close(read_fd)
        output.close()
        await store.upsert_background_task(
            session_id,
            task_id=task_id,
            command=command,
            status="error",
            output_tail=f"could not start: {exc}",
            output_path=path,
        )
        proc = None
    finally:
        os.close(write_fd)
    if proc is not None:
        try:
            deadline = time.time_ns() // 1_000_000 + int(timeout_s * 1000)
            await store.upsert_background_task(
                session_id,
                task_id=task_id,
                command=command,
                status="running",
                output_path=path,
                pid=proc.pid,
                host=HOST,
                deadline_at=deadline,
            )
        except BaseException:  # not recorded: the process must not run unsupervised
            _kill_group(proc)
            os.close(read_fd)
            output.close()
            raise
        supervisor._watch(LiveTask(session_id, task_id, command, proc, read_fd, output), store, timeout_s)
    found = await store.get_background_task(session_id, task_id)
    assert found is not None
    return found


BACKGROUND_RUN_DEFINITION = ToolDefinition(
    name="background_run",
    description=(
        "Start a shell command in the background (bash, in the workspace directory) and return at once "
        "with its task id. Use it for long-running work (builds, test suites, servers) while you do "
        "something else. When it finishes you are told its status and output tail; check_background "
        "shows it earlier. Commands are killed after "
        f"{DEFAULT_BACKGROUND_TIMEOUT_S} seconds by default."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "description": "The bash command line to run."}
        },
        "additionalProperties": False,
    },
    required_params=("command",),
)

CHECK_BACKGROUND_DEFINITION = ToolDefinition(
    name="check_background",
    description=(
        "Show a background task's status (running, completed, failed(<exit code>), timeout, error, "
        "killed, lost) and the tail of its output; without task_id, list every background task of "
        "this session."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "task_id": {"type": "string", "minLength": 1, "description": "The id background_run returned."}
        },
        "additionalProperties": False,
    },
)


def _list_line(row: BackgroundTaskRow) -> str:
    command = row.command if len(row.command) <= 80 else row.command[:77] + "..."
    return f"{row.task_id}  {row.status}  {command}"


async def _check_background(supervisor: BackgroundSupervisor, task_id: str | None) -> ToolHandlerResult:
    session_id, store = _context()
    if task_id is None:
        rows = [await _reconcile(store, r, supervisor) for r in await store.list_background_tasks(session_id)]
        if not rows:
            return ToolHandlerResult(ok=True, content="No background tasks in this session.")
        lines = [f"{len(rows)} background task(s):", *(_list_line(row) for row in rows)]
        return ToolHandlerResult(ok=True, content="\n".join(lines), data={"tasks": [r.task_id for r in rows]})
    row = await store.get_background_task(session_id, task_id)
    if row is None:
        return ToolHandlerResult(ok=False, content=f"Error: no background task {task_id!r} in this session.")
    row = await _reconcile(store, row, supervisor)
    if row.finished:  # seen here: the runtime projector need not announce it again
        await store.mark_background_seen(session_id, [row.task_id])
    return ToolHandlerResult(
        ok=True,
        content=_describe(row),
        data={"task_id": row.task_id, "status": row.status, "return_code": row.return_code},
    )


async def _background_run(
    command: str,
    bound: Path | None,
    backend: ShellBackend | None,
    timeout_s: float,
    output_dir: Path,
    supervisor: BackgroundSupervisor,
) -> ToolHandlerResult:
    session_id, store = _context()
    running = supervisor.running(session_id)
    if running >= MAX_RUNNING_BACKGROUND_TASKS:
        return ToolHandlerResult(
            ok=False,
            content=f"Error: {running} background tasks are already running in this session; "
            "wait for one to finish (check_background) before starting another.",
        )
    root, chosen = bound, backend
    if root is None:  # unbound: the current RuntimeEnv's workspace and shell backend
        env = get_runtime_env()
        root = Workspace(env.require_workspace_dir()).root
        chosen = env.shell_backend if env.shell_backend is not None else backend
    row = await start_background_task(
        command,
        root,
        session_id=session_id,
        store=store,
        backend=chosen,
        timeout_s=timeout_s,
        output_dir=output_dir,
        supervisor=supervisor,
    )
    if row.status != "running":
        return ToolHandlerResult(ok=False, content=f"Error: {row.output_tail}", data={"task_id": row.task_id})
    return ToolHandlerResult(
        ok=True,
        content=f"Started background task {row.task_id}. You will be told when it finishes; "
        f'check_background(task_id="{row.task_id}") shows its output so far.',
        data={"task_id": row.task_id, "status": row.status},
    )


def register_background_tools(
    registry: ToolRegistry,
    workspace: Workspace | str | os.PathLike[str] | None,
    *,
    backend: ShellBackend | None = None,
    timeout_s: float = DEFAULT_BACKGROUND_TIMEOUT_S,
    output_dir: str | os.PathLike[str] | None = None,
    include: Sequence[str] | None = None,
    overwrite: bool = False,
) -> BackgroundSupervisor:
    """Register ``background_run`` and ``check_background`` (or the ``include`` subset); returns the
    :class:`BackgroundSupervisor` of the tasks they start (``aclose()`` it to kill them at shutdown).

    ``workspace=None`` registers them unbound: each task runs in the current :class:`RuntimeEnv`'s
    workspace, through its ``shell_backend`` when it names one. Output files go to ``output_dir``
    (default: ``power_loop_background`` in the system temp directory). Both tools need the session
    store of a ``StatefulAgentLoop`` run. Not a security boundary (see ``bash``).
    """
    if timeout_s <= 0:
        raise ConfigError(f"timeout_s must be positive, got {timeout_s!r}")
    bound = (
        None
        if workspace is None
        else (workspace if isinstance(workspace, Workspace) else Workspace(workspace)).root
    )
    out = (
        Path(output_dir) if output_dir is not None else Path(tempfile.gettempdir()) / "power_loop_background"
    )

    supervisor = BackgroundSupervisor()

    async def background_run(command: str) -> ToolHandlerResult:
        return await _background_run(command, bound, backend, timeout_s, out, supervisor)

    async def check_background(task_id: str | None = None) -> ToolHandlerResult:
        return await _check_background(supervisor, task_id)

    handlers: dict[str, tuple[ToolDefinition, Any]] = {
        "background_run": (BACKGROUND_RUN_DEFINITION, background_run),
        "check_background": (CHECK_BACKGROUND_DEFINITION, check_background),
    }
    for name in include if include is not None else BACKGROUND_TOOL_NAMES:
        if name not in handlers:
            raise ConfigError(
                f"unknown background tool {name!r}; available: {', '.join(BACKGROUND_TOOL_NAMES)}"
            )
        definition, handler = handlers[name]
        registry.register(definition, handler, overwrite=overwrite)
    return supervisor
