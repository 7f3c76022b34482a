"""What one append writes: an :class:`AppendRequest`, whichever of the paths in ``_append`` writes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ._attachments import Blob, extract_attachments
from ._core import KnownState, dumps, utf8_safe
from ._hook_events import NewHookEvent
from ._lease import LeaseToken
from ._rows import KEEP, NewMessage, RoundUsage, SendAccounting

if TYPE_CHECKING:
    from ._lease import LeaseToken

__all__ = ["AppendRequest", "prepare_message"]


def prepare_message(msg: NewMessage) -> tuple[Any, ...]:
    """Serialise one message once: the column values after (session_id, seq)."""
    content = msg.content
    as_json = 0
    # Content parts are stored as JSON, and so is text containing NUL (PostgreSQL TEXT refuses it) or
    # lone surrogates (no driver encodes them; JSON escapes them losslessly).
    if content is not None and (not isinstance(content, str) or "\x00" in content or not utf8_safe(content)):
        content, as_json = dumps(content), 1
    return (
        msg.role,
        msg.name,
        content,
        as_json,
        None if msg.tool_calls is None else dumps(msg.tool_calls),
        msg.tool_call_id,
        msg.round_index,
        "active",
        dumps(msg.meta) if msg.meta else None,
    )


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """Everything one append writes in its transaction, whichever path writes it.

    ``rows`` (each message serialised once) and ``max_round`` (the highest round index among the
    messages) are derived. ``expected`` is the state row the handle remembers for the session: the
    optimistic path writes over exactly that version, the reading paths ignore it.
    """

    session_id: str
    messages: Sequence[NewMessage]
    begin_send: bool = False
    interactions: Any = KEEP
    consume: Sequence[int] = ()
    stats: SendAccounting | None = None
    usage: RoundUsage | None = None
    lease: LeaseToken | None = None
    expected: KnownState | None = None
    # Hook decisions of the send (AgentLoopConfig.record_hook_events), written with its round.
    hook_events: Sequence[NewHookEvent] = ()
    rows: list[tuple[Any, ...]] = field(init=False, repr=False)
    # Binary payloads cut out of the messages' content parts (written to ``attachments``).
    blobs: list[Blob] = field(init=False, repr=False)
    max_round: int | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        messages = self.messages
        object.__setattr__(self, "consume", tuple(self.consume))
        blobs: list[Blob] = []
        stored: list[NewMessage] = []
        for message in messages:
            content, found = extract_attachments(message.content)
            stored.append(replace(message, content=content) if found else message)
            blobs.extend(found)
        object.__setattr__(self, "rows", [prepare_message(m) for m in stored])
        object.__setattr__(self, "blobs", blobs)
        rounds = [m.round_index for m in messages if m.round_index is not None]
        object.__setattr__(self, "max_round", max(rounds) if rounds else None)
