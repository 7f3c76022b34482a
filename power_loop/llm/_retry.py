"""Retrying model calls: exponential backoff with jitter, ``Retry-After``, a total deadline, cancellation.

``sleep`` and ``clock`` are injectable so tests drive the schedule with a virtual clock
(:class:`power_loop.testing.VirtualClock`) and never wait for real.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    CancellationRequested,
    ConfigError,
    LLMNonRetryable,
    LLMRetryExhausted,
    LLMTimeout,
    MissingDependencyError,
    ProviderNotAvailable,
)
from ._cancel import CancellationToken

if TYPE_CHECKING:
    from ._cancel import CancellationLike

__all__ = [
    "PERMANENT_STATUS_CODES",
    "LLMRetryPolicy",
    "OnRetry",
    "is_permanent_llm_error",
    "retry_after_s",
    "with_retry",
]

T = TypeVar("T")

PERMANENT_STATUS_CODES = frozenset({400, 401, 403, 404, 422})
"""HTTP statuses that retrying cannot fix (bad request, auth, not found, unprocessable)."""

# Errors of our own that mean "misconfigured", never "try again".
_ALWAYS_PERMANENT = (LLMNonRetryable, ConfigError, MissingDependencyError, ProviderNotAvailable)

OnRetry = Callable[[int, BaseException, float], Any]
"""``on_retry(attempt, error, wait_s)``: called (sync or async) before sleeping for the next attempt."""


def _status_of(exc: BaseException) -> int | None:
    for holder in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "status"):
            value = getattr(holder, attr, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _header(headers: Any, name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and hasattr(headers, "items"):  # plain dicts are case-sensitive
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return str(val)
    return None if value is None else str(value)


def retry_after_s(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``exc.response.headers`` (or ``exc.headers``).

    Reads ``retry-after-ms`` first, then ``Retry-After`` as seconds or an HTTP date (relative to
    ``now``, default ``time.time()``). ``None`` when absent or unreadable; never negative.
    """
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        headers = getattr(exc, "headers", None)
    if headers is None:
        return None
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # lazy: keep `email` off the import path

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _finite(value: object) -> bool:
    """Not a NaN or infinite float (ints, of any size, and ``None`` are fine)."""
    return not isinstance(value, float) or math.isfinite(value)


@dataclass(slots=True)
class LLMRetryPolicy:
    """How :func:`with_retry` retries a failing model call.

    ``max_attempts`` counts the first try. Sleeps grow ``backoff_initial * 2**(n-1)`` capped at
    ``backoff_max``, each varied by ±``jitter`` (a fraction); a provider's ``Retry-After`` replaces
    the computed sleep. ``total_timeout`` (seconds, ``None`` = unbounded) bounds everything,
    attempts included. Only ``retry_on`` errors are retried; ``give_up_on`` errors and permanent
    provider statuses (400/401/403/404/422) stop at once. ``rng`` makes the jitter deterministic.
    """

    max_attempts: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    total_timeout: float | None = 60.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()
    jitter: float = 0.1
    rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = (self.max_attempts, self.backoff_initial, self.backoff_max, self.jitter)
        if not all(_finite(n) for n in (*numbers, self.total_timeout)):  # NaN passes every comparison below
            raise ConfigError(f"LLMRetryPolicy numbers must be finite: {self!r}")
        if self.max_attempts < 1:
            raise ConfigError(f"LLMRetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise ConfigError("LLMRetryPolicy backoff_initial/backoff_max must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"LLMRetryPolicy.jitter is a fraction in [0, 1], got {self.jitter}")
        if self.total_timeout is not None and self.total_timeout <= 0:
            raise ConfigError(f"LLMRetryPolicy.total_timeout must be > 0 or None, got {self.total_timeout}")

    def backoff_for_attempt(self, attempt: int) -> float:
        """The sleep after failed attempt number ``attempt`` (0 → 0.0)."""
        if attempt <= 0:
            return 0.0
        base = min(self.backoff_initial * 2.0 ** min(attempt - 1, 63), self.backoff_max)
        if self.jitter and base > 0:
            rng = self.rng if self.rng is not None else random
            base *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        return min(base, self.backoff_max)

    def is_permanent(self, exc: BaseException) -> bool:
        """True when retrying ``exc`` cannot help (see the class docstring)."""
        if isinstance(exc, _ALWAYS_PERMANENT) or (self.give_up_on and isinstance(exc, self.give_up_on)):
            return True
        return _status_of(exc) in PERMANENT_STATUS_CODES


def is_permanent_llm_error(exc: BaseException) -> bool:
    """True when a model-call error cannot be fixed by retrying (default :class:`LLMRetryPolicy` rules)."""
    return _DEFAULT_POLICY.is_permanent(exc)


_DEFAULT_POLICY = LLMRetryPolicy()


class _AttemptTimedOut(Exception):
    pass


async def _race(aw: Awaitable[T], limit: float | None, sleep: Callable[[float], Awaitable[Any]]) -> T:
    """Await ``aw``, giving up after ``limit`` seconds measured by the injected ``sleep``."""
    if limit is None:
        return await aw
    task = asyncio.ensure_future(aw)
    timer = asyncio.ensure_future(sleep(limit))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    raise _AttemptTimedOut


async def _sleep_cancellable(
    seconds: float, token: CancellationToken, sleep: Callable[[float], Awaitable[Any]]
) -> None:
    token.raise_if_cancelled()
    sleeper = asyncio.ensure_future(sleep(seconds))
    waiter = asyncio.ensure_future(token.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
    token.raise_if_cancelled()


def _takes_attempt(call: Callable[..., Awaitable[T]]) -> bool:
    """Whether ``call`` accepts the attempt number; the published shape is a zero-argument callable."""
    try:
        signature = inspect.signature(call)
    except (TypeError, ValueError):  # builtins without a signature: assume the published shape
        return False
    try:
        signature.bind(1)
    except TypeError:
        return False
    return True


async def with_retry(
    call: Callable[[int], Awaitable[T]] | Callable[[], Awaitable[T]],
    *,
    policy: LLMRetryPolicy | None = None,
    token: CancellationLike = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``call(attempt)`` (attempt starts at 1) until it succeeds, under ``policy``.

    ``call`` may also take no argument (the published call shape): it is then called as ``call()``.

    Raises :class:`LLMTimeout` when the total deadline passes (an in-flight attempt is abandoned, a
    sleep that would cross the deadline is not started), :class:`LLMNonRetryable` (from the original)
    on a permanent error, :class:`LLMRetryExhausted` (from the last error) after ``max_attempts``, and
    :class:`CancellationRequested` when ``token`` fires before an attempt or during a sleep. Errors
    outside ``retry_on`` and ``CancellationRequested`` raised by ``call`` propagate unchanged.
    """
    pol = policy if policy is not None else LLMRetryPolicy()
    tok = CancellationToken.from_any(token)
    with_attempt = _takes_attempt(call)
    total = pol.total_timeout
    start = clock()

    def timeout(attempts: int) -> LLMTimeout:
        return LLMTimeout(elapsed=clock() - start, attempts=attempts, total_timeout=float(total or 0.0))

    attempt = 0
    while True:
        tok.raise_if_cancelled()
        attempt += 1
        remaining = None if total is None else total - (clock() - start)
        if remaining is not None and remaining <= 0:
            raise timeout(attempt - 1)
        try:
            pending = call(attempt) if with_attempt else call()  # type: ignore[call-arg]
            return await _race(pending, remaining, sleep)
        except _AttemptTimedOut:
            raise timeout(attempt) from None
        except CancellationRequested:
            raise
        except Exception as exc:
            if isinstance(exc, LLMNonRetryable):
                raise
            if pol.is_permanent(exc):
                raise LLMNonRetryable(attempts=attempt, last_error=exc) from exc
            if not isinstance(exc, pol.retry_on):
                raise
            if attempt >= pol.max_attempts:
                raise LLMRetryExhausted(attempts=attempt, last_error=exc) from exc
            hinted = retry_after_s(exc)
            wait = hinted if hinted is not None else pol.backoff_for_attempt(attempt)
            if total is not None and wait >= total - (clock() - start):
                raise timeout(attempt) from exc
            if on_retry is not None:
                result = on_retry(attempt, exc, wait)
                if inspect.isawaitable(result):
                    await result
            await _sleep_cancellable(wait, tok, sleep)
