"""Bring your own database driver: a store on ``aiosqlite``, checked with ``check_database``.

The adapter itself (the ``Database`` / ``Transaction`` port implemented on aiosqlite, reusing the
built-in ``SqliteDialect``) is in ``examples/support/aiosqlite_db.py``; this file checks it with the
store's conformance suite and runs a loop on it. The loop takes any ``SessionStore``.

Run it (needs ``pip install aiosqlite``)::

    python examples/26_custom_database_adapter.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from support.aiosqlite_db import AiosqliteDatabase, open_aiosqlite_store

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM, check_database


async def run(tmp: Path) -> None:
    # First, the adapter against the store's conformance checks (an AssertionError names each failure).
    report = await check_database(lambda: AiosqliteDatabase.open(str(tmp / "check.db")))
    print("conformance checks passed:", ", ".join(report.passed))
    store = await open_aiosqlite_store(str(tmp / "custom_adapter.db"))
    llm = ScriptedLLM([ScriptedLLM.text("Hello from a store on aiosqlite.")])
    # The loop takes any SessionStore; it does not know (or care) which driver is underneath.
    async with StatefulAgentLoop(llm=llm, store=store) as loop:
        sid = await loop.new_session()
        result = await loop.send("Which driver stores this?", sid)
        print(f"{result.status}: {result.final_text}")
        rows = await store.load_active_messages(sid)
        print("stored rows:", [(m.seq, m.role) for m in rows])
        assert [m.role for m in rows] == ["user", "assistant"]
    await store.close()
    print("driver:", type(store.db).__name__, "dialect:", store.db.dialect.name)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        await run(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
