"""A long-lived background event loop for the synchronous API (`send_sync` and friends).

Pools of network drivers are bound to the event loop that created them, so every sync call of one
`StatefulAgentLoop` runs on the same dedicated thread and loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from ..errors import PowerLoopError

__all__ = ["SyncCallInEventLoopError", "SyncRunner", "blocking"]

T = TypeVar("T")
P = ParamSpec("P")


class SyncCallInEventLoopError(PowerLoopError, RuntimeError):
    """A ``*_sync`` method was called from inside a running event loop (use the async method)."""

    code = "loop.sync_in_async"


class SyncRunner:
    """Owns one daemon thread running an event loop; `run` executes a coroutine there and waits."""

    def __init__(self, name: str = "power-loop-sync") -> None:
        self._name = name
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._event_loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._event_loop, self._thread = loop, thread
            return self._event_loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise SyncCallInEventLoopError(
                "the *_sync methods cannot run inside a running event loop; await the async method instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result()

    @property
    def started(self) -> bool:
        return self._event_loop is not None

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._event_loop, self._thread
            self._event_loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


class _HasSyncRunner(Protocol):
    _sync: SyncRunner


S = TypeVar("S", bound=_HasSyncRunner)


def blocking(method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]]) -> Callable[Concatenate[S, P], T]:
    """The blocking twin of an async method, for code without an event loop: same parameters, run
    on the instance's `SyncRunner` thread (``send_sync = blocking(send)``)."""

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._sync.run(method(self, *args, **kwargs))

    run.__doc__ = f"Blocking `{method.__name__}` for code without an event loop (same parameters)."
    return run
