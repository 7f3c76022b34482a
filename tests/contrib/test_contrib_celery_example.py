"""``examples/celery_app.py`` and ``examples/celery_workflow.py`` run by the two commands their docstrings
give (RabbitMQ + Redis needed: a skip with the reason outside CI, a failure under ``CI``). Two workers run
the docstring's worker command; the app's submitting command must store each message once, answered,
though it is sent twice; the workflow's driver must get every leaf answered by a worker."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("celery")

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _commands(example: str) -> tuple[list[str], list[str]]:
    doc = (ROOT / "examples" / example).read_text(encoding="utf-8").split('"""')[1]
    worker = re.search(r"^\s+(celery .+?)\s+#", doc, re.M)
    submit = re.search(rf"^\s+(python examples/{re.escape(example)})", doc, re.M)
    assert worker and submit, "the docstring gives the two commands"
    return shlex.split(worker.group(1)), shlex.split(submit.group(1))


def _require_broker() -> None:
    missing = []
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            missing.append(name)
    if missing:
        reason = "the Celery example needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _run_example(example: str, tmp_path: Path) -> tuple[str, set[int]]:
    """The example's submitting command's output, with two workers of its worker command running (and
    the workers' pids: solo pools run their tasks in that process)."""
    _require_broker()
    worker_cmd, submit_cmd = _commands(example)
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",  # `celery`/`python` of this venv
        "PYTHONPATH": str(ROOT),
        "POWER_LOOP_QUEUE": f"pl-example-{secrets.token_hex(4)}",
        "POWER_LOOP_DSN": f"sqlite:///{tmp_path / 'agents.db'}",
        "POWER_LOOP_RESULTS": os.environ.get("POWER_LOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/11"),
    }
    log = (tmp_path / "workers.log").open("wb")
    workers = [
        subprocess.Popen([*worker_cmd, "-n", f"w{i}-{env['POWER_LOOP_QUEUE']}@%h"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for i in range(2)
    ]  # fmt: skip
    try:
        proc = subprocess.run(submit_cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        log.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr + (tmp_path / "workers.log").read_text()
    return proc.stdout, {w.pid for w in workers}


def test_the_two_commands_of_the_celery_example_store_each_message_once(tmp_path: Path) -> None:
    out, _ = _run_example("celery_app.py", tmp_path)
    assert out.count("4 tasks submitted; statuses ['completed']") == 2, out
    assert out.count(": 2 user messages stored") == 2, out
    for n in range(2):
        for k in range(2):
            order = f"A-{n}{k}"
            assert out.count(f"user      Where is order {order}\n") == 1, out
            assert out.count(f"assistant Order status: {order} shipped") == 1, out


def test_the_two_commands_of_the_celery_workflow_example_run_every_leaf_on_a_worker(tmp_path: Path) -> None:
    out, workers = _run_example("celery_workflow.py", tmp_path)
    assert re.search(r"workflow 'orders' run \w+: completed", out), out
    for i, order in enumerate(("B-1", "B-2", "B-3")):
        answer = re.search(rf"clerk:{i}: Order status: {order} shipped \(answered by worker pid (\d+)\)", out)
        assert answer and int(answer.group(1)) in workers, out
