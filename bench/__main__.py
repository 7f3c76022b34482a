"""power_loop benchmark: the kernel next to the physical floor, measured in the same run.

    python -m bench                 # SQLite scenarios (default)
    python -m bench --quick         # fewer iterations
    python -m bench --json out.json # also write machine-readable results
    python -m bench --import-only   # only the import figures (and the costliest modules)
    python -m bench --plot          # also the plot series (history length, concurrency, backends)
                                    # and the PNGs in docs/images/ (needs matplotlib: the bench extra)
    python -m bench --plot-from out.json  # re-render the PNGs from a `--plot --json` run

The floor is raw ``sqlite3`` committing the same rows per step in one transaction (WAL,
``synchronous=NORMAL``). The model is an instant scripted model, so every figure is kernel cost.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import backends
from bench._common import ROW, drive_concurrently, echo_tools, median_ms, text_llm, tool_llm
from bench._imports import LOOP_STATEMENT, import_figures, top_modules
from bench.sweeps import (
    CONCURRENCY,
    CONCURRENCY_QUICK,
    HISTORY,
    HISTORY_QUICK,
    concurrency_sweep,
    history_sweep,
)
from power_loop import StatefulAgentLoop
from power_loop.context import ContextPipeline

# --------------------------------------------------------------------------- the floor


def floor_text_send(path: str, n: int) -> float:
    """Two commits per send (user row + seq; answer + state + stats), as the kernel does."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE m (sid TEXT, seq INTEGER, role TEXT, content TEXT, meta TEXT, PRIMARY KEY(sid, seq))"
    )
    db.execute("CREATE TABLE s (sid TEXT PRIMARY KEY, next_seq INTEGER, pending TEXT)")
    db.execute("CREATE TABLE st (sid TEXT PRIMARY KEY, sends INTEGER, tokens INTEGER)")
    db.execute("INSERT INTO s VALUES ('a', 1, NULL)")
    seq = 1
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO m VALUES ('a', ?, 'user', ?, NULL)", (seq, ROW))
        db.execute("UPDATE s SET next_seq = ? WHERE sid = 'a'", (seq + 1,))
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO m VALUES ('a', ?, 'assistant', ?, NULL)", (seq + 1, ROW))
        db.execute("UPDATE s SET next_seq = ?, pending = NULL WHERE sid = 'a'", (seq + 2,))
        db.execute(
            "INSERT INTO st VALUES ('a', 1, 15) ON CONFLICT(sid) DO UPDATE SET sends = sends + 1, tokens = tokens + 15"
        )
        db.execute("COMMIT")
        samples.append(time.perf_counter() - start)
        seq += 2
    db.close()
    return median_ms(samples)


# --------------------------------------------------------------------------- kernel scenarios


async def _timed(n: int, step: Callable[[], Awaitable[Any]]) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await step()
        samples.append(time.perf_counter() - start)
    return median_ms(samples)


async def kernel_text_send(path: str, n: int, context: ContextPipeline | None = None) -> float:
    llm = text_llm()
    async with StatefulAgentLoop(llm=llm, dsn=path, context=context) as loop:
        sid = await loop.new_session()
        await loop.send(ROW, sid)  # warm up: open store, fill the cache
        return await _timed(n, lambda: loop.send(ROW, sid))


async def kernel_tool_send(path: str, n: int) -> float:
    llm = tool_llm()
    async with StatefulAgentLoop(llm=llm, dsn=path, tool_registry=echo_tools()) as loop:
        sid = await loop.new_session()
        await loop.send(ROW, sid)
        return await _timed(n, lambda: loop.send(ROW, sid))


async def kernel_cold_first_send(
    path: str, history_sends: int, n: int, context: ContextPipeline | None = None
) -> float:
    """First send of a brand-new loop on a long session (the store is opened before timing)."""
    llm = text_llm()
    async with StatefulAgentLoop(llm=llm, dsn=path, context=context) as loop:
        sid = await loop.new_session()
        for _ in range(history_sends):
            await loop.send(ROW, sid)
    samples = []
    for _ in range(n):
        async with StatefulAgentLoop(llm=llm, dsn=path, context=context) as cold:
            await cold.ensure_store()
            start = time.perf_counter()
            await cold.send(ROW, sid)
            samples.append(time.perf_counter() - start)
    return median_ms(samples)


async def kernel_concurrent(path: str, sessions: int, sends_each: int) -> float:
    llm = text_llm()
    async with StatefulAgentLoop(llm=llm, dsn=path) as loop:
        sids = [await loop.new_session() for _ in range(sessions)]
        return await drive_concurrently(loop, sids, sends_each)


def _file_size(path: str) -> int:
    return Path(path).stat().st_size


async def bytes_per_send(path: str, n: int) -> float:
    llm = text_llm()
    async with StatefulAgentLoop(llm=llm, dsn=path) as loop:
        sid = await loop.new_session()
        await loop.send(ROW, sid)
        store = await loop.ensure_store()
        await store.checkpoint()
        before = _file_size(path)
        for _ in range(n):
            await loop.send(ROW, sid)
        await store.checkpoint()
        after = _file_size(path)
    return (after - before) / n


async def memory_growth_mb(path: str, sessions: int, sends_each: int, cache_size: int) -> float:
    llm = text_llm()
    async with StatefulAgentLoop(llm=llm, dsn=path, session_cache_size=cache_size) as loop:
        sid0 = await loop.new_session()
        await loop.send(ROW, sid0)
        gc.collect()
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(sessions):
            sid = await loop.new_session()
            for _ in range(sends_each):
                await loop.send(ROW, sid)
        gc.collect()
        end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (end - start) / 1024.0


# --------------------------------------------------------------------------- report


async def run(quick: bool) -> dict[str, Any]:
    n = 200 if quick else 1000
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fresh = iter(range(1000))

        def db() -> str:
            return str(Path(tmp) / f"b{next(fresh)}.db")

        results["floor_text_send_ms"] = floor_text_send(db(), n)
        results["text_send_ms"] = await kernel_text_send(db(), n)
        results["tool_send_ms"] = await kernel_tool_send(db(), n // 2)
        cold_n = 10 if quick else 30
        # With a context pipeline (verbatim + LLMSummaryFold) the active window stays bounded, so a
        # cold send reads only that window; without one every stored message is the window.
        results["text_send_with_context_ms"] = await kernel_text_send(db(), n, ContextPipeline.default())
        results["cold_first_send_300_ms"] = await kernel_cold_first_send(
            db(), 300, cold_n, ContextPipeline.default()
        )
        results["cold_first_send_1200_ms"] = await kernel_cold_first_send(
            db(), 1200, cold_n, ContextPipeline.default()
        )
        if not quick:
            results["cold_first_send_10000_ms"] = await kernel_cold_first_send(
                db(), 10_000, cold_n, ContextPipeline.default()
            )
        results["cold_first_send_300_no_context_ms"] = await kernel_cold_first_send(db(), 300, cold_n)
        results["cold_first_send_1200_no_context_ms"] = await kernel_cold_first_send(db(), 1200, cold_n)
        results["concurrent_40_sends_per_s"] = await kernel_concurrent(db(), 40, 25 if quick else 50)
        results["bytes_per_text_send"] = await bytes_per_send(db(), n // 2)
        results["rss_growth_mb_200x20"] = await memory_growth_mb(db(), 200 if quick else 1000, 20, 256)
    # What a program that uses the loop pays, and power_loop's own share of it (bench/_imports.py).
    results.update(import_figures())
    return results


# --------------------------------------------------------------------------- plots


async def plot_series(quick: bool) -> dict[str, Any]:
    """The series only the plots need: history-length and concurrency sweeps, the backends."""
    with tempfile.TemporaryDirectory() as tmp:
        history = await history_sweep(
            Path(tmp), HISTORY_QUICK if quick else HISTORY, warm=20 if quick else 50, cold=3 if quick else 5
        )
        concurrency = await concurrency_sweep(
            Path(tmp), CONCURRENCY_QUICK if quick else CONCURRENCY, sends_each=10 if quick else 25
        )
    dsns = {name: backends.dsn_for(name, None) for name in ("postgres", "mysql")}
    return {"history": history, "concurrency": concurrency, "backends": await backends.run(dsns, quick)}


def plot_data(results: dict[str, Any], series: dict[str, Any], label: str) -> dict[str, Any]:
    """What ``bench._plot.render`` draws, from the figures of ``run`` and ``plot_series``."""
    bars = {
        "SQLite": {
            "floor_ms": results["floor_text_send_ms"],
            "text_send_ms": results["text_send_ms"],
            "tool_send_ms": results["tool_send_ms"],
        }
    }
    for name, title in (("postgres", "PostgreSQL"), ("mysql", "MySQL")):
        figures = series["backends"].get(name, {})
        if "skipped" not in figures and figures:
            bars[title] = {
                "floor_ms": figures["floor_commit_ms"],
                "text_send_ms": figures["text_send_ms"],
                "tool_send_ms": figures["tool_send_ms"],
            }
    imports = {
        "floor: import asyncio, json, sqlite3, …": results["import_floor_wall_ms"],
        "from power_loop import StatefulAgentLoop": results["import_loop_wall_ms"],
        "… power_loop's own share of it": results["import_loop_own_ms"],
        "import power_loop": results["import_ms"],
    }
    return {
        "label": label,
        "history": series["history"],
        "backends": bars,
        "concurrency": series["concurrency"],
        "imports": imports,
    }


def _render(data: dict[str, Any], out_dir: str) -> None:
    from bench._plot import render

    for path in render(data, Path(out_dir)):
        print(f"wrote {path}")


TARGETS = {
    "text_send_ms": ("<=", 0.4),
    "text_send_with_context_ms": ("<=", 0.4),
    "cold_first_send_1200_ms": ("<=", 3.0),
    "tool_send_ms": ("<=", 0.8),
    "cold_first_send_300_ms": ("<=", 3.0),
    "concurrent_40_sends_per_s": (">=", 3000.0),
    "import_ms": ("<=", 40.0),
    "import_loop_own_ms": ("<=", 20.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--import-only", action="store_true")
    parser.add_argument("--plot", action="store_true", help="also measure the plot series and render PNGs")
    parser.add_argument("--plot-dir", default="docs/images", help="where the PNGs go (default docs/images)")
    parser.add_argument(
        "--plot-from", metavar="PATH", help="only render the PNGs of a saved --plot --json run"
    )
    args = parser.parse_args()
    if args.plot and args.import_only:
        parser.error("--plot needs the full figures: drop --import-only")
    if args.plot_from:
        _render(json.loads(Path(args.plot_from).read_text())["plot"], args.plot_dir)
        return 0
    if args.import_only:
        results = import_figures()
        print(f"costliest modules of {LOOP_STATEMENT!r} beyond the floor (one run):")
        print("\n".join(top_modules()))
    else:
        results = asyncio.run(run(args.quick))
    floor = results.get("floor_text_send_ms", 0.0)
    print(f"{'figure':32} {'value':>12}  {'target':>10}  note")
    for key, value in results.items():
        target = TARGETS.get(key)
        mark = ""
        if target is not None:
            op, bound = target
            ok = value <= bound if op == "<=" else value >= bound
            mark = f"{op}{bound:g} {'ok' if ok else 'MISSED'}"
        note = (
            f"{value / floor:.1f}x floor" if key.endswith("send_ms") and key != "floor_text_send_ms" else ""
        )
        print(f"{key:32} {value:12.3f}  {mark:>10}  {note}")
    saved: dict[str, Any] = dict(results)
    if args.plot:
        label = f"{time.strftime('%Y-%m-%d')}, python -m bench --plot{' --quick' if args.quick else ''}"
        saved["plot"] = plot_data(results, asyncio.run(plot_series(args.quick)), label)
    if args.json:
        Path(args.json).write_text(json.dumps(saved, indent=2))
    if args.plot:
        _render(saved["plot"], args.plot_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
