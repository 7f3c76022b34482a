"""`StoreRef`: a shared store is used as given and never closed; an owned one is opened once, lazily."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from power_loop import StatefulAgentLoop
from power_loop.errors import ConfigError
from power_loop.loop._store_ref import StoreRef
from power_loop.store import SessionStore, open_store
from power_loop.testing import ScriptedLLM

NONE: dict[str, Any] = {
    "dsn": None,
    "db_path": None,
    "table_prefix": None,
    "schema": None,
    "max_spawn_depth": None,
}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dsn": "a.db"},
        {"table_prefix": "x_"},
        {"schema": "create"},
    ],
)
async def test_a_store_and_a_dsn_together_are_refused(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    store = await open_store(str(tmp_path / "s.db"))
    try:
        with pytest.raises(ConfigError, match="not both"):
            StoreRef(store, **{**NONE, **kwargs})
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dsn": "a.db", "db_path": "b.db"}, "different databases"),
        ({"max_spawn_depth": -1}, "max_spawn_depth"),
        ({"max_spawn_depth": "2"}, "max_spawn_depth"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        StoreRef(None, **{**NONE, **kwargs})


def test_the_loop_refuses_the_same_settings() -> None:
    for kwargs in ({"dsn": "a.db", "db_path": "b.db"}, {"session_cache_size": -1}, {"lease_ttl_s": 0}):
        with pytest.raises(ConfigError):
            StatefulAgentLoop(llm=ScriptedLLM(), **kwargs)


async def test_a_shared_store_is_used_as_given_and_never_taken(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "s.db"))
    try:
        ref = StoreRef(store, **{**NONE, "max_spawn_depth": 2})
        assert ref.current is store and store.max_spawn_depth == 2
        assert await ref.ensure() is store
        assert ref.take_owned() is None and ref.current is store
        await store.create_session()  # still open
    finally:
        await store.close()


async def test_an_owned_store_opens_once_on_first_use_and_is_handed_back_once(tmp_path: Path) -> None:
    path = tmp_path / "owned.db"
    ref = StoreRef(None, **{**NONE, "db_path": str(path), "table_prefix": "t_", "max_spawn_depth": 1})
    assert ref.current is None and ref.take_owned() is None and not path.exists()
    stores = await asyncio.gather(*(ref.ensure() for _ in range(5)))
    assert all(s is stores[0] for s in stores) and ref.current is stores[0]
    assert stores[0].max_spawn_depth == 1 and stores[0].table_prefix == "t_" and path.exists()
    owned = ref.take_owned()
    assert owned is stores[0] and ref.current is None and ref.take_owned() is None
    await owned.close()


async def test_the_loop_closes_only_a_store_it_owns(tmp_path: Path) -> None:
    shared = await open_store(str(tmp_path / "shared.db"))
    try:
        async with StatefulAgentLoop(llm=ScriptedLLM(), store=shared) as loop:
            await loop.new_session()
        assert loop.store is shared
        await shared.create_session()  # the loop left it open
    finally:
        await shared.close()
    owner = StatefulAgentLoop(llm=ScriptedLLM(), dsn=str(tmp_path / "own.db"))
    assert owner.store is None
    store: SessionStore = await owner.ensure_store()
    assert owner.store is store
    await owner.aclose()
    assert owner.store is None
