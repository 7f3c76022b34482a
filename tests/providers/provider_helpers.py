"""Helpers shared by the provider tests (a module with a unique name: test folders are not packages)."""

from __future__ import annotations

# Per-request timeout for the tests where the server never answers: no reply can arrive, so short is safe.
HANG_TIMEOUT_S = 0.4


class SleepRecorder:
    """An injected ``sleep`` for ``with_retry``: records the waits, sleeps for real never."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
