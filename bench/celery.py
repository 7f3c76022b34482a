"""Sends per second through Celery (RabbitMQ broker, Redis results, PostgreSQL store) with 1, 2 and 4
``celery worker`` processes, and the broker's cost per send next to a direct ``loop.send``.

    python -m bench.celery                 # 1, 2, 4 workers, 360 sends per point
    python -m bench.celery --quick         # 120 sends per point
    python -m bench.celery --workers 1 2 --sends 200 --json out.json

The model is an instant scripted text model, so a send is kernel + store + broker cost. Each point
submits one send to each of ``--sends`` fresh sessions (no two tasks compete for a session) from
this process, in windows of ``WINDOW`` tasks, and times until every result is back. Latency rows run
one at a time: a send through the broker (submit, a worker runs it, the result comes back through
Redis), a task that does nothing (the broker's own round trip), and a direct ``loop.send`` in this
process, without and with what a worker adds (a session lease and a message id).

Needs RabbitMQ and Redis (``$POWER_LOOP_BENCH_AMQP_URL`` / ``$POWER_LOOP_BENCH_REDIS_URL``, default
the local servers) and PostgreSQL (``--postgres DSN``, else ``$POWER_LOOP_BENCH_POSTGRES_DSN``, else
``$POWER_LOOP_TEST_POSTGRES_DSN``). The workers import this module (``celery -A bench.celery``); it
builds its app from the ``PL_BENCH_*`` variables the bench gives them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import Celery
from celery.result import ResultSet

from bench._common import ROW, text_llm
from power_loop import StatefulAgentLoop
from power_loop.contrib.celery import install_tasks, submit_send
from power_loop.store import all_table_names, connect_database

ROOT = Path(__file__).resolve().parents[1]
NOOP_TASK = "bench.noop"
WINDOW = 120
BROKER = os.environ.get("POWER_LOOP_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BACKEND = os.environ.get("POWER_LOOP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def make_app(queue: str) -> Celery:
    app = Celery("power_loop_bench", broker=BROKER, backend=BACKEND)
    app.conf.update(
        task_default_queue=queue,
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        result_expires=600,
        worker_hijack_root_logger=False,
    )
    app.task(name=NOOP_TASK)(_noop)
    return app


def _noop() -> int:
    return 0


def make_loop() -> StatefulAgentLoop:
    return StatefulAgentLoop(
        llm=text_llm(),
        dsn=os.environ["PL_BENCH_DSN"],
        table_prefix=os.environ["PL_BENCH_PREFIX"],
        lease_ttl_s=10.0,
    )


def _worker_app() -> Celery | None:
    if "PL_BENCH_QUEUE" not in os.environ:
        return None
    app = make_app(os.environ["PL_BENCH_QUEUE"])
    install_tasks(app, make_loop)
    return app


app = _worker_app()


# --------------------------------------------------------------------------- the worker pool


class Pool:
    """``n`` solo-pool ``celery worker`` processes on one fresh queue and table prefix."""

    def __init__(self, dsn: str, prefix: str, n: int) -> None:
        self.queue = f"pl-bench-{secrets.token_hex(4)}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PL_BENCH_QUEUE": self.queue,
            "PL_BENCH_DSN": dsn,
            "PL_BENCH_PREFIX": prefix,
        }
        cmd = [sys.executable, "-m", "celery", "-A", "bench.celery", "worker", "--pool=solo", "-Q", self.queue,
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]  # fmt: skip
        self.procs = [
            subprocess.Popen(
                [*cmd, "-n", f"b{i}-{self.queue}@%h"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(n)
        ]
        self.app = make_app(self.queue)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        with self.app.connection_for_write() as conn:
            conn.default_channel.queue_delete(self.queue)


# --------------------------------------------------------------------------- measurements


async def _new_sessions(dsn: str, prefix: str, n: int) -> list[str]:
    loop = StatefulAgentLoop(llm=text_llm(), dsn=dsn, table_prefix=prefix)
    try:
        return [await loop.new_session() for _ in range(n)]
    finally:
        await loop.aclose()


async def _drop(dsn: str, prefix: str) -> None:
    db = await connect_database(dsn)
    try:
        for name in all_table_names(prefix):
            await db.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await db.close()


def _rate(submit: Any, count: int) -> float:
    start = time.perf_counter()
    # In windows of WINDOW tasks, each joined at once (Redis pub/sub): with hundreds of results pending
    # in one client, waiting on them stalled for seconds (the rate fell 10-30x on this machine).
    for first in range(0, count, WINDOW):
        ResultSet([submit(i) for i in range(first, min(count, first + WINDOW))]).get(timeout=600)
    return count / (time.perf_counter() - start)


def measure_pool(dsn: str, workers: int, sends: int) -> dict[str, float]:
    """Sends/s with ``workers`` processes (after four warm-up sends per worker)."""
    prefix = f"bcel{secrets.token_hex(3)}_"
    sids = asyncio.run(_new_sessions(dsn, prefix, sends + 4 * workers))
    pool = Pool(dsn, prefix, workers)
    try:
        warm = sids[sends:]
        for result in [submit_send(pool.app, ROW, sid) for sid in warm]:
            result.get(timeout=300)  # every worker connected and its loop built
        rate = _rate(lambda i: submit_send(pool.app, ROW, sids[i]), sends)
    finally:
        pool.stop()
        asyncio.run(_drop(dsn, prefix))
    return {"workers": workers, "sends_per_s": rate}


async def _direct_ms(dsn: str, prefix: str, count: int, *, as_worker: bool) -> float:
    """One session's sends in this process; ``as_worker``: with a lease and a message id, like a task."""
    lease = 10.0 if as_worker else None
    loop = StatefulAgentLoop(llm=text_llm(), dsn=dsn, table_prefix=prefix, lease_ttl_s=lease)
    try:
        sid = await loop.new_session()
        samples = []
        for i in range(count + 5):
            start = time.perf_counter()
            await loop.send(ROW, sid, message_id=f"m{i}" if as_worker else None)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples[5:]) * 1000
    finally:
        await loop.aclose()


def measure_latency(dsn: str, count: int) -> dict[str, float]:
    """Median ms of one send at a time: through the broker (one worker) and a direct ``loop.send``."""
    prefix = f"bcel{secrets.token_hex(3)}_"
    sid = asyncio.run(_new_sessions(dsn, prefix, 1))[0]
    pool = Pool(dsn, prefix, 1)
    try:
        samples = []
        for i in range(count + 5):
            start = time.perf_counter()
            submit_send(pool.app, ROW, sid).get(timeout=300)
            if i >= 5:
                samples.append(time.perf_counter() - start)
        broker_ms = statistics.median(samples) * 1000
        noop = []
        for _ in range(count):
            start = time.perf_counter()
            pool.app.send_task(NOOP_TASK).get(timeout=300)
            noop.append(time.perf_counter() - start)
    finally:
        pool.stop()
    try:
        direct_ms = asyncio.run(_direct_ms(dsn, prefix, count, as_worker=False))
        leased_ms = asyncio.run(_direct_ms(dsn, prefix, count, as_worker=True))
    finally:
        asyncio.run(_drop(dsn, prefix))
    return {
        "broker_send_ms": broker_ms,
        "noop_task_ms": statistics.median(noop) * 1000,
        "direct_send_ms": direct_ms,
        "direct_leased_send_ms": leased_ms,
        "overhead_ms": broker_ms - direct_ms,
        "broker_only_ms": broker_ms - leased_ms,
    }


# --------------------------------------------------------------------------- report


def _report(points: list[dict[str, float]], latency: dict[str, float]) -> None:
    print("| worker processes | sends/s |")
    print("|---|---|")
    for p in points:
        print(f"| {p['workers']:.0f} | {p['sends_per_s']:.0f} |")
    print()
    print("| one send at a time | median ms |")
    print("|---|---|")
    print(f"| through the broker (submit → worker → result) | {latency['broker_send_ms']:.2f} |")
    print(f"| a no-op task through the broker | {latency['noop_task_ms']:.2f} |")
    print(f"| direct `loop.send` in one process | {latency['direct_send_ms']:.2f} |")
    print(
        f"| direct, with a lease and a message id (what a task runs) | {latency['direct_leased_send_ms']:.2f} |"
    )
    print(f"| overhead per send: through the broker minus direct | {latency['overhead_ms']:.2f} |")
    print(
        f"| of which the broker and worker (minus the leased direct send) | {latency['broker_only_ms']:.2f} |"
    )


def _dsn(arg: str | None) -> str:
    dsn = (
        arg
        or os.environ.get("POWER_LOOP_BENCH_POSTGRES_DSN")
        or os.environ.get("POWER_LOOP_TEST_POSTGRES_DSN")
    )
    if not dsn:
        raise SystemExit("give --postgres DSN (or set POWER_LOOP_BENCH_POSTGRES_DSN)")
    return dsn


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.celery")
    parser.add_argument("--quick", action="store_true", help="120 sends per point, 20 latency samples")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--sends", type=int, help="sends per point (default 360, --quick 120)")
    parser.add_argument("--postgres", metavar="DSN")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    dsn = _dsn(args.postgres)
    sends = args.sends or (120 if args.quick else 360)
    points = []
    for n in args.workers:
        points.append(measure_pool(dsn, n, sends))
        print(f"{n} worker(s): {points[-1]['sends_per_s']:.0f} sends/s", file=sys.stderr)
    latency = measure_latency(dsn, 20 if args.quick else 100)
    _report(points, latency)
    if args.json:
        Path(args.json).write_text(json.dumps({"points": points, "latency": latency}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
