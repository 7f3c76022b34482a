"""Import cost: power_loop's own share of ``from power_loop import StatefulAgentLoop``.

Each figure is the median over fresh interpreters. The *own share* sums the ``-X importtime`` self
times of every module the statement imports that the floor statement (the standard-library modules a
loop needs anyway: asyncio, json, sqlite3, dataclasses, logging, threading) does not: power_loop's
modules plus any other module loaded only because of power_loop. Wall times are measured in separate
runs without ``-X importtime``, whose bookkeeping inflates them.

Every interpreter runs with warm bytecode caches, as an installed package does: the caches live in a
temporary ``PYTHONPYCACHEPREFIX`` (filled by one warm-up run per statement), so the measurement writes
nothing into the source tree and ``PYTHONDONTWRITEBYTECODE`` in the environment cannot turn it into
a measurement of the compiler.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable

__all__ = ["FLOOR_STATEMENT", "LOOP_STATEMENT", "import_figures", "import_wall_ms", "own_share_ms"]

LOOP_STATEMENT = "from power_loop import StatefulAgentLoop"
FLOOR_STATEMENT = "import asyncio, json, sqlite3, dataclasses, logging, threading"


@functools.cache
def _env() -> dict[str, str]:
    """The environment of the measured interpreters: bytecode caches on, in a private directory."""
    prefix = tempfile.mkdtemp(prefix="pl-bench-pyc-")
    atexit.register(shutil.rmtree, prefix, True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = prefix
    return env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, env=_env())


@functools.cache
def _warm(statement: str) -> None:
    _run("-c", statement)  # compiles and caches every module the statement imports


def _self_times(statement: str) -> dict[str, int]:
    """Module name → self time in µs, from one fresh interpreter running ``statement``."""
    _warm(statement)
    out = _run("-X", "importtime", "-c", statement)
    times: dict[str, int] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.split(":", 1)[1].split("|")
        times[name.strip()] = int(self_us)
    return times


def own_share_ms(statement: str = LOOP_STATEMENT, floor: str = FLOOR_STATEMENT, runs: int = 15) -> float:
    """Median over ``runs`` interpreters of the self time of modules ``floor`` does not import."""
    floor_modules = set(_self_times(floor))
    samples = []
    for _ in range(runs):
        times = _self_times(statement)
        samples.append(sum(us for name, us in times.items() if name not in floor_modules) / 1000.0)
    return statistics.median(samples)


def import_wall_ms(statement: str, runs: int = 15) -> float:
    """Median wall time of ``statement`` in ``runs`` fresh interpreters (start-up excluded)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    _warm(statement)
    samples = []
    for _ in range(runs):
        out = _run("-c", code)
        samples.append(float(out.stdout.strip()) * 1000.0)
    return statistics.median(samples)


def top_modules(statement: str = LOOP_STATEMENT, floor: str = FLOOR_STATEMENT, n: int = 10) -> Iterable[str]:
    """The ``n`` costliest modules of the own share in one run (for ``--import-only`` output)."""
    floor_modules = set(_self_times(floor))
    times = {name: us for name, us in _self_times(statement).items() if name not in floor_modules}
    for name, us in sorted(times.items(), key=lambda item: -item[1])[:n]:
        yield f"  {us / 1000.0:7.2f} ms  {name}"


def import_figures(runs: int = 15) -> dict[str, float]:
    """The import figures of the benchmark report."""
    return {
        "import_ms": import_wall_ms("import power_loop", runs),
        "import_loop_own_ms": own_share_ms(LOOP_STATEMENT, FLOOR_STATEMENT, runs),
        "import_loop_wall_ms": import_wall_ms(LOOP_STATEMENT, runs),
        "import_floor_wall_ms": import_wall_ms(FLOOR_STATEMENT, runs),
    }
