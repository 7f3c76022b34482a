"""The pre-forking worker of ``SubprocessExecutor(preload=True)``: ``python -m power_loop.workflow.zygote``.

Started once per executor, with the executor's `WorkerBootstrap` (JSON) as its one argument. It
imports the worker and runs one warm-up leaf (the offline echo model on an in-memory store), so that
everything a leaf loads lazily is loaded once; it imports the modules the bootstrap names too. Then it
answers ``{"ready": <pid>}`` and reads one request per stdin line::

    {"job": "<WorkerJob JSON>", "result": "<path>", "log": "<path>"}

For each it forks a child and answers ``{"pid": <child pid>}`` once the child leads a session (a
process group) of its own. The child restores the default signal handlers, sends its stdout and stderr
to ``log``, runs the job exactly as ``python -m power_loop.workflow.worker`` would (`job_frame`), writes
the worker's frame to ``result`` atomically (a temporary file, then ``os.replace``) and ``os._exit`` s.
The zygote reaps its exited children as they end (SIGCHLD, ``waitpid(WNOHANG)``) and exits at stdin EOF,
i.e. when the executor closes it or its process goes away; running children finish on their own.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Any, NoReturn

from ._worker_job import WorkerBootstrap, WorkerJob
from .worker import job_frame, run_job

__all__ = ["main"]

_WARM_UP_MODEL = "power_loop.llm:EchoLLMService"


def _reap(signum: int = 0, frame: FrameType | None = None) -> None:
    """Collect every exited child, so none lingers as a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _preload(bootstrap: str | None) -> None:
    """Import what every leaf would import: the worker's lazy parts (one warm-up leaf) and the
    bootstrap's modules. Best effort: a failure here is met again, and reported, by the leaf."""
    warm_up = {"llm_factory": _WARM_UP_MODEL}
    try:
        asyncio.run(
            run_job(
                WorkerJob(
                    {"name": "warm-up", "system_prompt": "."},
                    "warm up",
                    ":memory:",
                    "wf_" + "0" * 24,
                    {},
                    warm_up,
                )
            )
        )
        if bootstrap is not None:
            boot = WorkerBootstrap.from_dict(json.loads(bootstrap))
            for path in (boot.llm_factory, boot.registry_factory):
                if path is not None:
                    importlib.import_module(path.partition(":")[0])
    except Exception:
        traceback.print_exc()
    for thread in threading.enumerate():  # fork from a single-threaded process only
        if thread is not threading.current_thread():
            thread.join(timeout=10)
    gc.collect()
    gc.freeze()  # the children's collections leave the preloaded objects (and their pages) alone


def _redirect(log_path: str) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _write_result(path: str, frame: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(frame, default=str))
    os.replace(tmp, path)  # the parent sees the whole frame or none


def _child(request: dict[str, Any], ready_w: int, reply_fd: int) -> NoReturn:
    code = 1
    try:
        os.setsid()  # its own process group: a timeout or a cancellation ends everything it starts
        os.close(reply_fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the leaf's own subprocesses are its to wait for
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.write(ready_w, b"1")
        os.close(ready_w)
        _redirect(str(request["log"]))
        frame = job_frame(str(request["job"]))
        _write_result(str(request["result"]), frame)
        code = 0 if frame["ok"] else 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def _spawn(line: bytes, reply_fd: int) -> dict[str, Any]:
    try:
        request = json.loads(line)
        ready_r, ready_w = os.pipe()
        pid = os.fork()
    except (ValueError, OSError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if pid == 0:
        os.close(ready_r)
        _child(request, ready_w, reply_fd)
    os.close(ready_w)
    os.read(ready_r, 1)  # b"" if the child died before: the parent then finds no result
    os.close(ready_r)
    return {"pid": pid}


def _reply(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def main() -> int:
    """Entry point: preload, announce readiness, then fork one child per request until stdin EOF."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (a factory module's, the warm-up's) must not corrupt the replies
    _preload(sys.argv[1] if len(sys.argv) > 1 else None)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the executor ends it (stdin EOF), not a terminal
    _reply(reply_fd, {"ready": os.getpid()})
    for line in sys.stdin.buffer:
        if line.strip():
            sys.stdout.flush()
            sys.stderr.flush()
            _reply(reply_fd, _spawn(line, reply_fd))
        _reap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
