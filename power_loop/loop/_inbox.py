"""Input with a caller-chosen id: ``send(message_id=)`` and ``deliver``, stored once per session.

A task queue delivers at least once; a web client retries. Give a user message an id and every
repetition of it is harmless: the store keeps the id in the same transaction as the message (its
``inbox`` table, see ``store/_inbox``), so the first to store it wins — in this process or any other —
and a repetition returns the first send's outcome instead of sending again:

* the first send finished: its recorded outcome (status, final text, rounds);
* it was interrupted (its process died mid-send) and is still the session's latest send: it is
  finished now through the recovery route (`Recovery.resume`: unanswered tool calls run again, as
  effect-aware as the tools say) — never a second user message;
* its outcome was never recorded and later sends followed: the outcome read back from its messages.

``deliver`` is the inbox-shaped entry: it sends when the session is free, and queues the item as a
durable follow-up (deduplicated by the same id) when a send is running — here or in another process
holding the session's lease (`SessionBusy`) — or when asked to (``enqueue_only``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import store as S
from ..errors import ConfigError
from ._cache import load_window
from ._recovery import NOTHING_TO_RESUME, Continuation, Recovery
from ._types import FollowUpQueued, StatefulResult

if TYPE_CHECKING:
    from ..store import AppendResult, InboxRow, NewMessage, SessionStore
    from ._deferred import DeferredInput
    from ._guard import SessionGuard

__all__ = [
    "InboxItem",
    "begin_once",
    "check_item_id",
    "finish_once",
    "inbox_items",
    "queue_items",
]

#: Ids are stored in a key column (255 characters on MySQL).
MAX_ITEM_ID_CHARS = 200


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One piece of input for `StatefulAgentLoop.deliver`: its text and the caller's id for it (a
    retry with the same id is stored once; None: no dedupe)."""

    content: str
    item_id: str | None = None


def check_item_id(item_id: object, what: str = "message_id") -> str:
    """``item_id`` when it is a usable id, else `ConfigError`."""
    if not isinstance(item_id, str) or not item_id.strip() or len(item_id) > MAX_ITEM_ID_CHARS:
        raise ConfigError(f"{what} must be a non-blank string of at most {MAX_ITEM_ID_CHARS} characters")
    return item_id


def inbox_items(items: str | InboxItem | Sequence[str | InboxItem], item_id: str | None) -> list[InboxItem]:
    """``deliver``'s input as items: one text (with ``item_id``), one item, or several items."""
    if isinstance(items, (str, InboxItem)):
        items = [items]
    elif item_id is not None:
        raise ConfigError("item_id= names a single item; give each InboxItem its own item_id")
    found: list[InboxItem] = []
    for item in items:
        if isinstance(item, str):
            item = InboxItem(item, item_id)
        if not isinstance(item, InboxItem) or not isinstance(item.content, str):
            raise ConfigError("deliver takes text, an InboxItem or a list of them")
        if item.item_id is not None:
            check_item_id(item.item_id, "item_id")
        found.append(item)
    if not found:
        raise ConfigError("deliver needs at least one item")
    return found


async def queue_items(
    store: SessionStore, deferred: DeferredInput, session_id: str, items: Sequence[InboxItem]
) -> FollowUpQueued:
    """Queue each item as a durable follow-up; an id already known is counted as a duplicate."""
    accepted: list[str] = []
    duplicates = 0
    last = 0
    for item in items:
        if item.item_id is None:
            last = await store.enqueue_follow_up(session_id, item.content)
            continue
        queued = await store.inbox.enqueue(session_id, item.item_id, item.content)
        if isinstance(queued, int):
            accepted.append(item.item_id)
            last = queued
        else:
            duplicates += 1
    deferred.flags.add(session_id)
    depth = len(await store.list_follow_ups(session_id))
    return FollowUpQueued(
        session_id=session_id,
        queue_depth=depth,
        item_id=last,
        accepted=len(items) - duplicates,
        duplicates=duplicates,
        accepted_ids=tuple(accepted),
    )


async def begin_once(
    store: SessionStore,
    recovery: Recovery,
    guard: SessionGuard,
    session_id: str,
    message_id: str | None,
    user: NewMessage,
    heal: bool,
) -> AppendResult | StatefulResult | Continuation:
    """Begin a send with ``user``: its `AppendResult`; with a ``message_id`` already known, what the first
    send with that id came to instead: its outcome, or the `Continuation` finishing it."""
    if message_id is None:
        return await recovery.begin_send(store, session_id, user, heal=heal)
    # Refused while tool calls of an earlier send are pending (the id is then not stored either: one
    # transaction). The lease token is read at each attempt: the renewal replaces it.
    begun = await recovery.append_or_heal(
        store,
        session_id,
        lambda: store.inbox.put_message(session_id, message_id, user, lease=guard.lease_token(session_id)),
        heal=heal,
    )
    if isinstance(begun, S.InboxRow):
        return await _known(store, recovery, guard, session_id, begun)
    return begun


async def _known(
    store: SessionStore, recovery: Recovery, guard: SessionGuard, session_id: str, row: InboxRow
) -> StatefulResult | Continuation:
    """What a repeated id returns: the first send's outcome, or the recovery route finishing it."""
    if row.status is not None:
        return StatefulResult(
            session_id=session_id, status=row.status, final_text=row.final_text or "", rounds=row.rounds or 0
        )
    if row.send_index is None:  # first queued by `deliver`
        return await _flush(store, recovery, guard, session_id, row)
    state = await store.get_state(session_id)
    if state is not None and state.send_index == row.send_index:
        step = await recovery.resume(store, session_id)
        if not (isinstance(step, StatefulResult) and step.status == NOTHING_TO_RESUME):
            return step
    return await _read_back(store, session_id, row.send_index)


async def _flush(
    store: SessionStore, recovery: Recovery, guard: SessionGuard, session_id: str, row: InboxRow
) -> StatefulResult | Continuation:
    """A repeated id first queued as a follow-up: if it still waits (nobody drove the session since),
    the session is held now, so its queued follow-ups begin a send (the engine's follow-up message)."""
    queued = await store.list_follow_ups(session_id)
    if row.follow_up_id not in {item.item_id for item in queued}:
        return StatefulResult(session_id=session_id, status=NOTHING_TO_RESUME)  # delivered by some send
    if await Recovery.get_pending(store, session_id):
        return await recovery.resume(store, session_id)  # the interrupted send delivers it when it goes on
    body = "\n\n".join(item.content for item in queued)
    message = S.NewMessage(role="user", content=f"<follow_up>\n{body}\n</follow_up>", name="follow_up")
    await store.append_messages(
        session_id,
        [message],
        begin_send=True,
        consume_follow_ups=[item.item_id for item in queued],
        lease=guard.lease_token(session_id),
    )
    return Continuation(await load_window(store, session_id), None)


async def _read_back(store: SessionStore, session_id: str, send_index: int) -> StatefulResult:
    """The outcome of a send that ended without recording it, from its stored messages."""
    answers = [
        m
        for m in await store.load_all_messages(session_id)
        if m.send_index == send_index and m.role == "assistant"
    ]
    final = answers[-1].content if answers else None
    return StatefulResult(
        session_id=session_id,
        status="completed",
        final_text=final if isinstance(final, str) else "",
        rounds=len(answers),
    )


async def finish_once(
    store: SessionStore, session_id: str, message_id: str | None, result: StatefulResult
) -> StatefulResult:
    """``result``, first recorded as the outcome of the send ``message_id`` began (what a repetition
    of the id returns); without an id, ``result`` as is."""
    if message_id is None:
        return result
    await store.inbox.finish(
        session_id, message_id, status=result.status, final_text=result.final_text, rounds=result.rounds
    )
    return result
