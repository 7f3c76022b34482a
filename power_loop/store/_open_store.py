"""``open_store``: a DSN in, a ready ``SessionStore`` out (backend chosen, schema provisioned)."""

from __future__ import annotations

import warnings

from ._open import DEFAULT_TABLE_PREFIX
from ._schema import SchemaPolicy
from ._sessions import MAX_SPAWN_DEPTH
from ._store import SessionStore

__all__ = ["open_store"]


async def open_store(
    dsn: str = ":memory:",
    *,
    table_prefix: str = DEFAULT_TABLE_PREFIX,
    schema: SchemaPolicy | str | None = None,
    max_spawn_depth: int = MAX_SPAWN_DEPTH,
    read_only: bool = False,
    create_schema: bool | None = None,
) -> SessionStore:
    """Open the store a DSN names and make sure its schema is in place.

    ``dsn``: a SQLite path (parents created, ``~`` expanded), ``:memory:``, ``sqlite:///rel.db``,
    ``sqlite:////abs.db``, ``postgresql://…`` or ``mysql://…``. ``schema``: ``"auto_create"``
    (default: create/migrate) or ``"verify"`` (only check; raises ``StoreSchemaError`` with the DDL).
    ``read_only=True`` (inspection tools): the schema is verified, never provisioned, and a SQLite file
    is opened read-only — nothing is created; writes through the store then fail. ``create_schema``
    is the published, deprecated spelling (``True`` → auto_create, ``False`` → verify; ``schema`` wins).
    """
    if create_schema is not None:
        warnings.warn(
            "open_store(create_schema=...) is deprecated; use schema='auto_create' or 'verify'",
            DeprecationWarning,
            stacklevel=2,
        )
        if schema is None:
            schema = SchemaPolicy.AUTO_CREATE if create_schema else SchemaPolicy.VERIFY
    return await SessionStore.connect(
        dsn, table_prefix=table_prefix, schema=schema, max_spawn_depth=max_spawn_depth, read_only=read_only
    )
