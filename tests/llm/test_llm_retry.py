from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.errors import (
    CancellationRequested,
    ConfigError,
    LLMNonRetryable,
    LLMRetryExhausted,
    LLMTimeout,
    MissingDependencyError,
)
from power_loop.llm import (
    CancellationToken,
    LLMRequest,
    LLMRetryPolicy,
    is_permanent_llm_error,
    retry_after_s,
    with_retry,
)
from power_loop.testing import ScriptedLLM, VirtualClock


class ProviderError(Exception):
    """Shaped like the SDKs' status errors: ``status_code`` and ``response.headers``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = SimpleNamespace(status_code=status, headers=headers or {})


def flaky(failures: list[BaseException], result: str = "ok") -> tuple[Any, list[int]]:
    """A call that raises the given errors in order, then returns ``result``; records attempts."""
    attempts: list[int] = []

    async def call(attempt: int) -> str:
        attempts.append(attempt)
        if failures:
            raise failures.pop(0)
        return result

    return call, attempts


# -------------------------------------------------------------------------------------------- policy
def test_backoff_schedule_without_jitter() -> None:
    p = LLMRetryPolicy(backoff_initial=0.5, backoff_max=8.0, jitter=0.0)
    assert [p.backoff_for_attempt(n) for n in range(8)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert p.backoff_for_attempt(10_000) == 8.0


@settings(max_examples=100, deadline=None)
@given(
    attempt=st.integers(min_value=1, max_value=40),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    initial=st.floats(min_value=0.0, max_value=5.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_jitter_stays_in_bounds_and_is_deterministic(
    attempt: int, jitter: float, initial: float, seed: int
) -> None:
    p = LLMRetryPolicy(backoff_initial=initial, backoff_max=8.0, jitter=jitter, rng=random.Random(seed))
    q = LLMRetryPolicy(backoff_initial=initial, backoff_max=8.0, jitter=jitter, rng=random.Random(seed))
    base = min(initial * 2 ** (attempt - 1), 8.0)
    got = p.backoff_for_attempt(attempt)
    assert base * (1 - jitter) - 1e-9 <= got <= min(base * (1 + jitter), 8.0) + 1e-9
    assert got == q.backoff_for_attempt(attempt)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"backoff_initial": -1},
        {"jitter": 1.5},
        {"total_timeout": 0},
        {"backoff_initial": float("nan")},  # NaN passes every comparison: a sleep of NaN seconds
        {"backoff_max": float("nan")},
        {"jitter": float("nan")},
        {"total_timeout": float("nan")},
        {"max_attempts": float("inf")},
    ],
)
def test_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        LLMRetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (ProviderError(400), True),
        (ProviderError(401), True),
        (ProviderError(403), True),
        (ProviderError(404), True),
        (ProviderError(422), True),
        (ProviderError(429), False),
        (ProviderError(500), False),
        (ProviderError(503), False),
        (type("E", (Exception,), {"status": 401})(), True),
        (type("H", (Exception,), {"response": SimpleNamespace(status_code=404)})(), True),
        (LLMNonRetryable(attempts=1, last_error=ValueError("x")), True),
        (MissingDependencyError("openai", "openai", "x"), True),
        (ConfigError("bad"), True),
        (ValueError("boom"), False),
        (TimeoutError(), False),
    ],
)
def test_is_permanent(exc: BaseException, permanent: bool) -> None:
    assert LLMRetryPolicy().is_permanent(exc) is permanent


def test_module_level_permanence_check() -> None:
    assert is_permanent_llm_error(ProviderError(403))
    assert not is_permanent_llm_error(ProviderError(429))


def test_give_up_on_makes_types_permanent() -> None:
    assert LLMRetryPolicy(give_up_on=(KeyError,)).is_permanent(KeyError("k"))
    assert not LLMRetryPolicy().is_permanent(KeyError("k"))


# ------------------------------------------------------------------------------------------ retry-after
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds_and_ms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(ProviderError(429, headers)) == expected


def test_retry_after_http_date_and_other_holders() -> None:
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=timezone.utc), usegmt=True)
    assert retry_after_s(ProviderError(429, {"Retry-After": date}), now=now) == pytest.approx(30.0)
    assert retry_after_s(ProviderError(429, {"Retry-After": date}), now=now + 100) == 0.0
    bare = Exception("x")
    bare.headers = {"retry-after": "4"}  # type: ignore[attr-defined]
    assert retry_after_s(bare) == 4.0
    assert retry_after_s(ValueError("no headers")) is None


# ----------------------------------------------------------------------------------------- with_retry
async def test_transient_errors_are_retried_on_schedule() -> None:
    clock = VirtualClock()
    errors = [ProviderError(500), ProviderError(429)]
    call, attempts = flaky(list(errors))
    retries: list[tuple[int, BaseException, float]] = []
    policy = LLMRetryPolicy(max_attempts=3, jitter=0.0, total_timeout=None)
    result = await with_retry(
        call, policy=policy, on_retry=lambda *a: retries.append(a), sleep=clock.sleep, clock=clock
    )
    assert result == "ok"
    assert attempts == [1, 2, 3]
    assert retries == [(1, errors[0], 0.5), (2, errors[1], 1.0)]
    assert clock.sleeps == [0.5, 1.0]
    assert clock.monotonic() == pytest.approx(1.5)


async def test_async_on_retry_is_awaited() -> None:
    clock = VirtualClock()
    seen: list[int] = []

    async def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        await asyncio.sleep(0)
        seen.append(attempt)

    call, _ = flaky([ProviderError(502)])
    await with_retry(call, policy=LLMRetryPolicy(jitter=0), on_retry=on_retry, sleep=clock.sleep, clock=clock)
    assert seen == [1]


async def test_exhaustion_raises_retry_exhausted_from_last_error() -> None:
    clock = VirtualClock()
    last = ProviderError(503)
    call, attempts = flaky([ProviderError(500), last, ProviderError(500)])
    with pytest.raises(LLMRetryExhausted) as err:
        await with_retry(
            call, policy=LLMRetryPolicy(max_attempts=2, jitter=0), sleep=clock.sleep, clock=clock
        )
    assert type(err.value) is LLMRetryExhausted
    assert err.value.attempts == 2 and err.value.last_error is last and err.value.__cause__ is last
    assert attempts == [1, 2]


async def test_permanent_error_stops_immediately() -> None:
    clock = VirtualClock()
    original = ProviderError(401)
    call, attempts = flaky([original])
    with pytest.raises(LLMNonRetryable) as err:
        await with_retry(call, policy=LLMRetryPolicy(), sleep=clock.sleep, clock=clock)
    assert err.value.__cause__ is original and err.value.last_error is original and err.value.attempts == 1
    assert err.value.code == "llm.non_retryable"
    assert attempts == [1] and clock.sleeps == [60.0]  # only the first attempt's deadline timer


async def test_non_retryable_from_call_and_foreign_errors_propagate_unchanged() -> None:
    clock = VirtualClock()
    nr = LLMNonRetryable(attempts=1, last_error=ValueError("v"))
    call, _ = flaky([nr])
    with pytest.raises(LLMNonRetryable) as err:
        await with_retry(call, sleep=clock.sleep, clock=clock)
    assert err.value is nr
    call, attempts = flaky([KeyError("k")])
    with pytest.raises(KeyError):
        await with_retry(
            call, policy=LLMRetryPolicy(retry_on=(ProviderError,)), sleep=clock.sleep, clock=clock
        )
    assert attempts == [1]
    call, attempts = flaky([CancellationRequested("stop")])
    with pytest.raises(CancellationRequested):
        await with_retry(call, sleep=clock.sleep, clock=clock)
    assert attempts == [1]


async def test_retry_after_replaces_backoff() -> None:
    clock = VirtualClock()
    call, _ = flaky([ProviderError(429, {"retry-after": "7"})])
    waits: list[float] = []
    await with_retry(
        call,
        policy=LLMRetryPolicy(jitter=0),
        on_retry=lambda a, e, w: waits.append(w),
        sleep=clock.sleep,
        clock=clock,
    )
    assert waits == [7.0]
    assert clock.monotonic() == pytest.approx(7.0)


async def test_retry_after_past_deadline_times_out_without_sleeping() -> None:
    clock = VirtualClock()
    error = ProviderError(429, {"retry-after": "120"})
    call, _ = flaky([error])
    with pytest.raises(LLMTimeout) as err:
        await with_retry(call, policy=LLMRetryPolicy(total_timeout=30), sleep=clock.sleep, clock=clock)
    assert err.value.attempts == 1 and err.value.total_timeout == 30
    assert err.value.__cause__ is error
    assert clock.sleeps == [30]  # the attempt's deadline timer; no backoff sleep was started


async def test_hanging_attempt_is_bounded_by_total_timeout() -> None:
    clock = VirtualClock()
    llm = ScriptedLLM([ScriptedLLM.delay(300, "too late")], sleep=clock.sleep)
    req = LLMRequest(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(LLMTimeout) as err:
        await with_retry(
            lambda attempt: llm.complete(req),
            policy=LLMRetryPolicy(total_timeout=10),
            sleep=clock.sleep,
            clock=clock,
        )
    assert err.value.attempts == 1
    assert err.value.elapsed == pytest.approx(10.0)
    assert err.value.code == "llm.timeout"


async def test_fast_attempt_beats_the_deadline_timer() -> None:
    clock = VirtualClock()
    llm = ScriptedLLM([ScriptedLLM.delay(3, "in time")], sleep=clock.sleep)
    req = LLMRequest(messages=[{"role": "user", "content": "hi"}])
    resp = await with_retry(
        lambda a: llm.complete(req), policy=LLMRetryPolicy(total_timeout=10), sleep=clock.sleep, clock=clock
    )
    assert resp.text == "in time"
    assert clock.monotonic() == pytest.approx(3.0)


async def test_deadline_consumed_by_slow_failures() -> None:
    clock = VirtualClock()
    attempts: list[int] = []

    async def call(attempt: int) -> str:
        attempts.append(attempt)
        clock.advance(6)  # each failing attempt burns 6 virtual seconds
        raise ProviderError(500)

    policy = LLMRetryPolicy(max_attempts=10, backoff_initial=1, jitter=0, total_timeout=20)
    with pytest.raises(LLMTimeout) as err:
        await with_retry(call, policy=policy, sleep=clock.sleep, clock=clock)
    # t=6 fail, sleep 1 → 7; t=13 fail, sleep 2 → 15; t=21 fail → past the deadline
    assert attempts == [1, 2, 3]
    assert err.value.attempts == 3


async def test_unbounded_total_timeout_still_retries() -> None:
    call, attempts = flaky([ProviderError(500)])
    clock = VirtualClock()
    assert (
        await with_retry(
            call, policy=LLMRetryPolicy(total_timeout=None, jitter=0), sleep=clock.sleep, clock=clock
        )
        == "ok"
    )
    assert attempts == [1, 2]


async def test_cancelled_before_first_attempt() -> None:
    token = CancellationToken()
    token.cancel("user pressed stop")
    call, attempts = flaky([])
    with pytest.raises(CancellationRequested) as err:
        await with_retry(call, token=token)
    assert err.value.reason == "user pressed stop" and attempts == []


async def test_cancel_during_backoff_sleep() -> None:
    clock = VirtualClock()
    token = CancellationToken()
    loop = asyncio.get_running_loop()

    def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        loop.call_soon(token.cancel, "shutdown")  # fires while the sleep is parked

    call, attempts = flaky([ProviderError(500), ProviderError(500)])
    with pytest.raises(CancellationRequested) as err:
        await with_retry(
            call,
            policy=LLMRetryPolicy(backoff_initial=5, jitter=0, total_timeout=None),
            token=token,
            on_retry=on_retry,
            sleep=clock.sleep,
            clock=clock,
        )
    assert err.value.reason == "shutdown"
    assert attempts == [1]
    assert clock.sleeps == [5] and clock.monotonic() < 5
    await asyncio.sleep(0)
    assert clock.pending == 0


async def test_event_sources_cancel_retry() -> None:
    clock = VirtualClock()
    stop = asyncio.Event()

    def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        stop.set()

    call, attempts = flaky([ProviderError(500), ProviderError(500)])
    with pytest.raises(CancellationRequested):
        await with_retry(call, token=stop, on_retry=on_retry, sleep=clock.sleep, clock=clock)
    assert attempts == [1]


async def test_with_retry_accepts_the_published_zero_argument_call() -> None:
    from power_loop import LLMRetryPolicy, with_retry

    calls: list[str] = []

    async def flaky() -> str:
        calls.append("x")
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    async def no_sleep(_s: float) -> None:
        return None

    policy = LLMRetryPolicy(max_attempts=3, backoff_initial=0.0, total_timeout=None)
    assert await with_retry(flaky, policy=policy, sleep=no_sleep) == "ok"
    assert len(calls) == 3

    attempts: list[int] = []

    async def numbered(attempt: int) -> int:
        attempts.append(attempt)
        return attempt

    assert await with_retry(numbered, policy=policy, sleep=no_sleep) == 1
    assert attempts == [1]
