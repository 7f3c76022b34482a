"""Workflow overhead with an instant model (issue 12's figures).

    python -m bench.workflows            # add --quick for fewer iterations, --json out.json to save

* per-leaf overhead, in process: a sequential foreach of N leaves vs N plain ``send`` s on fresh
  sessions (what a leaf does underneath: one session, one send, one journal write);
* a 100-item foreach's wall time at concurrency 1, 5 and 20;
* per-leaf overhead out of process (`SubprocessExecutor`) next to ``python -c pass`` and to a bare
  ``import power_loop.workflow.worker``. Run it with byte code cached (``PYTHONDONTWRITEBYTECODE``
  unset, or a warm ``__pycache__``): otherwise every worker compiles the package from source;
* the same with ``preload=True`` (leaves forked from a zygote), its one-off start-up, what a forked
  child does — the worker's ``run_job`` — timed alone in this (warm) process, and a 100-item foreach of
  preloaded leaves at concurrency 5 and 20.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import text_llm
from power_loop import StatefulAgentLoop
from power_loop.workflow import SubprocessExecutor, WorkerBootstrap, WorkerJob, create_workflow
from power_loop.workflow.worker import run_job

ROOT = str(Path(__file__).resolve().parent.parent)


def _foreach(n: int, concurrency: int) -> dict[str, Any]:
    body = {
        "type": "agent",
        "id": "leaf",
        "spec": {"name": "leaf", "system_prompt": "Work on {{x}}."},
        "input": "{{x}}",
    }
    items = list(range(n))
    return {
        "name": "bench",
        "root": {"type": "foreach", "as": "x", "items": items, "max_concurrency": concurrency, "body": body},
    }


async def _plain_sends(db: str, n: int) -> float:
    async with StatefulAgentLoop(llm=text_llm(), dsn=db) as loop:
        start = time.perf_counter()
        for _ in range(n):
            await loop.send("hi", await loop.new_session())
        return (time.perf_counter() - start) / n


async def _workflow(db: str, n: int, concurrency: int, executor: Any = None) -> float:
    async with StatefulAgentLoop(llm=text_llm(), dsn=db) as loop:
        start = time.perf_counter()
        result = await create_workflow(_foreach(n, concurrency), parent_loop=loop, executor=executor).run()
        elapsed = time.perf_counter() - start
        assert result.status == "completed", result.errors
        return elapsed


def _python(code: str, repeat: int) -> float:
    """The median wall time of ``python -c code`` (a median: one stalled start must not skew it)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, *sys.path])}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _warm_job(tmp: Path, n: int) -> float:
    """What a preloaded child does, in this process with everything imported: one ``run_job``."""
    boot = WorkerBootstrap(llm_factory="bench._common:text_llm").to_dict()
    spec = {"name": "leaf", "system_prompt": "Work."}
    jobs = [WorkerJob(spec, "x", str(tmp / f"job{i}.db"), f"wf_{i:024x}", {}, boot) for i in range(n + 1)]
    await run_job(jobs[0])  # the lazy imports
    start = time.perf_counter()
    for job in jobs[1:]:
        await run_job(job)
    return (time.perf_counter() - start) / n


async def _preloaded(tmp: Path, n: int, env: dict[str, str]) -> dict[str, Any]:
    bootstrap = WorkerBootstrap(llm_factory="bench._common:text_llm")
    async with SubprocessExecutor(bootstrap=bootstrap, runs_dir=tmp / "pre", env=env, preload=True) as ex:
        first_s = await _workflow(str(tmp / "pre1.db"), 1, 1, ex)  # starts the zygote
        leaf_s = await _workflow(str(tmp / "pre.db"), n, 1, ex) / n
        walls = {str(c): await _workflow(str(tmp / f"pre_fe{c}.db"), 100, c, ex) * 1e3 for c in (5, 20)}
    return {
        "leaf_ms": leaf_s * 1e3,
        "zygote_start_ms": (first_s - leaf_s) * 1e3,
        "foreach_100_wall_ms": walls,
    }


async def _main(quick: bool) -> dict[str, Any]:
    n = 30 if quick else 100
    sub_n = 3 if quick else 10
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        send_s = await _plain_sends(str(Path(tmp) / "send.db"), n)
        leaf_s = await _workflow(str(Path(tmp) / "leaf.db"), n, 1) / n
        out["in_process"] = {"send_ms": send_s * 1e3, "leaf_ms": leaf_s * 1e3, "ratio": leaf_s / send_s}
        out["foreach_100_wall_ms"] = {
            str(c): await _workflow(str(Path(tmp) / f"fe{c}.db"), 100, c) * 1e3 for c in (1, 5, 20)
        }
        root = ROOT
        executor = SubprocessExecutor(
            bootstrap=WorkerBootstrap(llm_factory="bench._common:text_llm"),
            runs_dir=Path(tmp) / "runs",
            env={"PYTHONPATH": os.pathsep.join([root, *sys.path])},
        )
        sub_s = await _workflow(str(Path(tmp) / "sub.db"), sub_n, 1, executor) / sub_n
        pass_s = _python("pass", max(sub_n, 10))
        import_s = _python("import power_loop.workflow.worker", sub_n)
        out["subprocess"] = {
            "leaf_ms": sub_s * 1e3,
            "python_c_pass_ms": pass_s * 1e3,
            "import_worker_ms": import_s * 1e3,
            "ratio": sub_s / pass_s,
        }
        pre = await _preloaded(
            Path(tmp), 10 if quick else 30, {"PYTHONPATH": os.pathsep.join([root, *sys.path])}
        )
        pre["ratio"] = pre["leaf_ms"] / (pass_s * 1e3)
        pre["child_job_ms"] = await _warm_job(Path(tmp), 10 if quick else 30) * 1e3
        out["preload"] = pre
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(_main(args.quick))
    ip, sp = results["in_process"], results["subprocess"]
    print(
        f"in-process leaf  {ip['leaf_ms']:8.2f} ms   plain send {ip['send_ms']:6.2f} ms   ratio {ip['ratio']:.2f}x"
    )
    for c, ms in results["foreach_100_wall_ms"].items():
        print(f"foreach x100     concurrency {c:>2}: {ms:8.1f} ms")
    print(
        f"subprocess leaf  {sp['leaf_ms']:8.1f} ms   python -c pass {sp['python_c_pass_ms']:6.1f} ms "
        f"(ratio {sp['ratio']:.1f}x)   importing the worker alone {sp['import_worker_ms']:6.1f} ms"
    )
    pre = results["preload"]
    print(
        f"preloaded leaf   {pre['leaf_ms']:8.1f} ms   (ratio {pre['ratio']:.1f}x python -c pass)   zygote start-up "
        f"{pre['zygote_start_ms']:6.1f} ms once   a child's run_job alone {pre['child_job_ms']:6.1f} ms"
    )
    for c, ms in pre["foreach_100_wall_ms"].items():
        print(f"foreach x100     concurrency {c:>2}, preloaded subprocess leaves: {ms:8.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
