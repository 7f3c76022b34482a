"""The series behind the benchmark plots: per-send cost against history length, concurrency scaling.

Used by ``python -m bench --plot``; each series is measured in the same run as the other figures.

- ``history_sweep``: one session grows; at each checkpoint (a number of sends already in the
  session) the median of a few warm sends on the same loop is taken, and a brand-new loop's first
  send (cold: it reads the window from the store), with and without ``ContextPipeline.default()``.
- ``concurrency_sweep``: sends per second when N sessions send at once on one loop.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench._common import ROW, drive_concurrently, median_ms, text_llm
from power_loop import StatefulAgentLoop
from power_loop.context import ContextPipeline

__all__ = [
    "CONCURRENCY",
    "CONCURRENCY_QUICK",
    "HISTORY",
    "HISTORY_QUICK",
    "concurrency_sweep",
    "history_sweep",
]

HISTORY = (0, 100, 300, 1000, 3000)  # sends already in the session at each checkpoint
HISTORY_QUICK = (0, 100, 300, 1000)
CONCURRENCY = (1, 2, 5, 10, 20, 40, 80)  # sessions sending at once on one loop
CONCURRENCY_QUICK = (1, 5, 20, 40)


async def _series(
    path: str, lengths: tuple[int, ...], warm: int, cold: int, context: bool
) -> dict[str, list[float]]:
    llm = text_llm()

    def pipeline() -> ContextPipeline | None:
        return ContextPipeline.default() if context else None

    warm_ms: list[float] = []
    cold_ms: list[float] = []
    done = 0
    async with StatefulAgentLoop(llm=llm, dsn=path, context=pipeline()) as loop:
        sid = await loop.new_session()
        for length in lengths:
            while done < length:
                await loop.send(ROW, sid)
                done += 1
            samples = []
            for _ in range(warm):
                start = time.perf_counter()
                await loop.send(ROW, sid)
                samples.append(time.perf_counter() - start)
            done += warm
            warm_ms.append(median_ms(samples))
            samples = []
            for _ in range(cold):
                async with StatefulAgentLoop(llm=llm, dsn=path, context=pipeline()) as fresh:
                    await fresh.ensure_store()
                    start = time.perf_counter()
                    await fresh.send(ROW, sid)
                    samples.append(time.perf_counter() - start)
            done += cold
            cold_ms.append(median_ms(samples))
    return {"warm_ms": warm_ms, "cold_ms": cold_ms}


async def history_sweep(
    workdir: Path, lengths: tuple[int, ...], warm: int = 50, cold: int = 5
) -> dict[str, Any]:
    """Per-send cost (ms) at each history length, with and without a context pipeline."""
    plain = await _series(str(workdir / "history-plain.db"), lengths, warm, cold, context=False)
    folded = await _series(str(workdir / "history-context.db"), lengths, warm, cold, context=True)
    return {
        "lengths": list(lengths),
        "warm_ms": plain["warm_ms"],
        "cold_ms": plain["cold_ms"],
        "warm_context_ms": folded["warm_ms"],
        "cold_context_ms": folded["cold_ms"],
    }


async def concurrency_sweep(
    workdir: Path, sessions: tuple[int, ...], sends_each: int = 20, repeats: int = 3
) -> dict[str, Any]:
    """Sends per second at each number of concurrent sessions (one loop, one SQLite file each).

    Each point is the median of ``repeats`` rounds on the same sessions, so one burst of load from
    another process does not make the point.
    """
    rates: list[float] = []
    for n in sessions:
        async with StatefulAgentLoop(llm=text_llm(), dsn=str(workdir / f"concurrency-{n}.db")) as loop:
            sids = [await loop.new_session() for _ in range(n)]
            await drive_concurrently(loop, sids, 2)  # warm up
            rounds = [await drive_concurrently(loop, sids, sends_each) for _ in range(repeats)]
            rates.append(statistics.median(rounds))
    return {"sessions": list(sessions), "sends_per_s": rates}
