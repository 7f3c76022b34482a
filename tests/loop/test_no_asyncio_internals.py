"""The package reads no private attribute of asyncio objects (issue 9: the loop once read
``Lock._waiters``): private names are only ever reached on ``self``/``cls`` or within their module."""

from __future__ import annotations

import ast
from pathlib import Path

import power_loop

# Private attributes of asyncio's locks, queues, futures, tasks and event loops.
ASYNCIO_PRIVATE = {
    "_waiters",
    "_loop",
    "_locked",
    "_getters",
    "_putters",
    "_unfinished_tasks",
    "_ready",
    "_scheduled",
    "_callbacks",
    "_coro",
    "_fut_waiter",
    "_must_cancel",
    "_num_cancels_requested",
}


def _offences(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ASYNCIO_PRIVATE:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"line {node.lineno}: .{node.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and node.args[1].value.startswith("_")
            and not node.args[1].value.startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return found


def test_no_module_reads_private_asyncio_attributes() -> None:
    root = Path(power_loop.__file__).parent
    offences = {
        str(path.relative_to(root)): found
        for path in sorted(root.rglob("*.py"))
        if (found := _offences(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert offences == {}


def test_the_check_catches_the_old_lock_probe() -> None:
    old = "def f(lock):\n    return not getattr(lock, '_waiters', None) and lock._loop is None\n"
    assert len(_offences(ast.parse(old))) == 2
