"""The real parts of the Celery tests: RabbitMQ and Redis addresses, the reachability check (a skip
outside CI, a failure under ``CI``), ``celery worker`` processes started and SIGKILLed by pid, and
dropping a test's tables. Imported by ``test_contrib_celery_real.py`` and
``test_contrib_celery_workflow_real.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from power_loop.store import all_table_names, connect_database

HERE = Path(__file__).resolve().parent
BROKER = os.environ.get("POWER_LOOP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BACKEND = os.environ.get("POWER_LOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def require_parts() -> str:
    missing = [
        name for name, port in (("RabbitMQ", 5672), ("Redis", 6379)) if not reachable("127.0.0.1", port)
    ]
    dsn = os.environ.get("POWER_LOOP_TEST_POSTGRES_DSN")
    if not dsn:
        missing.append("PostgreSQL (POWER_LOOP_TEST_POSTGRES_DSN)")
    if missing:
        reason = "real-parts Celery test needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert dsn is not None
    return dsn


class Workers:
    """``celery worker`` processes (solo pool) on one queue; SIGKILL and restart one by pid."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        cmd = [
            sys.executable, "-m", "celery", "-A", "celery_worker_app", "worker", "--pool=solo",
            "--concurrency=1", "-Q", self.env["PL_TEST_QUEUE"], "-n", f"{name}-{self.env['PL_TEST_QUEUE']}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", os.environ.get("PL_TEST_LOGLEVEL", "WARNING"),
        ]  # fmt: skip
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=HERE)

    def kill_pid(self, pid: int) -> str | None:
        for name, proc in self.procs.items():
            if proc.pid == pid and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                return name
        return None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


async def drop_tables(dsn: str, prefix: str) -> None:
    db = await connect_database(dsn)
    try:
        for name in all_table_names(prefix):
            await db.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await db.close()
