"""`run_leaf_once`: one leaf on a store several processes share, exactly once by its idempotency key.

What a worker of a task queue runs for a leaf (`power_loop.contrib.celery`'s ``workflow_leaf`` task).
The queue delivers at least once — again after a worker died, and again when a driver resumed on
another host resubmits a leaf whose first task is still running — so every run of the same leaf
attempt meets the same child session (its id comes from the idempotency key) and:

* a session holding a final answer is adopted: its outcome is returned, the model is not called;
* otherwise the leaf's input is sent with a message id derived from the session id, holding the
  session's lease: the first run stores the input and runs the leaf; a later one finds the id and
  returns the first run's outcome, or — when that run's process died — finishes it through the
  loop's recovery route (never a second input message); while another live process drives the
  session, `SessionBusy` is raised for the caller to retry later (it never closes a running session).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..agents import AgentSpec
from ..errors import ConfigError, StoreIntegrityError
from ..llm import CancellationLike
from ..loop import StatefulAgentLoop
from ..store import SessionStore
from ._leaf import (
    create_leaf_session,
    failed_leaf,
    finished_outcome,
    leaf_loop,
    leaf_outcome,
    leaf_registry,
    sent_leaf,
)

__all__ = ["leaf_message_id", "run_leaf_once"]


def leaf_message_id(session_id: str) -> str:
    """The message id a leaf's input is stored under in its session (the inbox dedupe key)."""
    return f"{session_id}:input"


async def _started_elsewhere(store: SessionStore, session_id: str) -> bool:
    """True when the session holds messages but not our input id: begun by another executor."""
    if await store.inbox.get(session_id, leaf_message_id(session_id)) is not None:
        return False
    return bool(await store.load_active_messages(session_id))


async def run_leaf_once(
    loop: StatefulAgentLoop,
    spec: AgentSpec | Mapping[str, Any],
    user_input: str,
    *,
    driver_sid: str,
    session_id: str,
    metadata: Mapping[str, Any],
    lease_ttl_s: float = 30.0,
    stop_event: CancellationLike = None,
) -> dict[str, Any]:
    """Run one leaf attempt in session ``session_id`` (a child of ``driver_sid``) on ``loop``'s store,
    with ``loop``'s model, tools, hooks and events; returns the `Executor` outcome dict.

    Safe to call again for the same leaf from any process sharing the store (see the module doc).
    Raises `SessionBusy` while another live process drives the leaf's session (its lease, held for
    ``lease_ttl_s`` past its holder's death) and `LeaseLostError` when this run was taken over; every
    other failure is reported as ``status="failed"``.
    """
    spec = AgentSpec.coerce(spec)
    store = await loop.ensure_store()
    adopted = await finished_outcome(store, spec, session_id)
    if adopted is not None:
        return leaf_outcome(session_id, **adopted)
    registry = leaf_registry(loop.tool_registry, spec.tools)
    if isinstance(registry, str):
        return failed_leaf(session_id, registry)
    child = leaf_loop(loop, store, spec, registry, lease_ttl_s)
    failed = await _ensure_session(child, store, spec, driver_sid, session_id, metadata)
    if failed is not None:
        return failed_leaf(session_id, failed)
    result = await child.send(
        user_input, session_id, message_id=leaf_message_id(session_id), stop_event=stop_event
    )
    return sent_leaf(session_id, result)


async def _ensure_session(
    child: StatefulAgentLoop,
    store: SessionStore,
    spec: AgentSpec,
    driver_sid: str,
    session_id: str,
    metadata: Mapping[str, Any],
) -> str | None:
    """Make sure the leaf's session exists and is ours to send into; an error text when it cannot be."""
    if await store.get_session(session_id) is not None and await _started_elsewhere(store, session_id):
        # Begun by an executor that stores no input id (a run resumed with another executor): it is
        # discarded like `InProcessExecutor` does, under the lease (SessionBusy while it is driven).
        await child.close_session(session_id)
    if await store.get_session(session_id) is not None:
        return None
    try:
        await create_leaf_session(store, spec, child.config, driver_sid, session_id, metadata)
    except (ConfigError, StoreIntegrityError) as exc:
        # Created meanwhile by another run of this leaf (the send below then meets its lease or its
        # input id), or refused (deeper than max_spawn_depth): only the second is a failure.
        if await store.get_session(session_id) is None:
            return str(exc)
    return None
