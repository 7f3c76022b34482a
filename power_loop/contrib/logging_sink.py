"""Send events to a stdlib :mod:`logging` logger as one JSON line each, secrets redacted.

The message is ``{"event", "seq", "ts", "session_id"[, "round_index"][, "source"], "payload"}``; the same
dict is attached to the record as ``record.power_loop_event`` for structured handlers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..events import AgentEvent, AgentEventType, EventBusProtocol
from ._redact import resolve_redact, sanitize_payload
from ._subscribe import subscribe_filtered

__all__ = ["DEFAULT_LOGGER_NAME", "attach_logging_sink", "event_log_record"]

DEFAULT_LOGGER_NAME = "power_loop.events"


def event_log_record(
    event: AgentEvent, *, redact_keys: Iterable[str] | None = None, max_field_len: int | None = 500
) -> dict[str, Any]:
    """The dict the logging sink writes for ``event`` (payload sanitised; optional fields only when set)."""
    record: dict[str, Any] = {
        "event": event.type.value,
        "seq": event.seq,
        "ts": event.ts,
        "session_id": event.session_id,
    }
    if event.round_index is not None:
        record["round_index"] = event.round_index
    if event.source is not None:
        record["source"] = event.source
    record["payload"] = sanitize_payload(event, redact_keys=redact_keys, max_field_len=max_field_len)
    return record


def attach_logging_sink(
    bus: EventBusProtocol,
    *,
    logger: logging.Logger | str | None = None,
    level: int = logging.INFO,
    events: Iterable[AgentEventType | str] | None = None,
    max_field_len: int = 500,
    redact_keys: Iterable[str] | None = None,
) -> Callable[[], None]:
    """Log every event (or only ``events``) on ``logger`` (default ``"power_loop.events"``) at ``level``.

    Nothing is serialised while the logger is disabled for ``level``. Returns a function that detaches
    the sink (the published API returned ``None``; ignoring the return value stays valid).
    """
    log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger or DEFAULT_LOGGER_NAME)
    keys = resolve_redact(redact_keys)

    def handle(event: AgentEvent) -> None:
        if not log.isEnabledFor(level):
            return
        record = event_log_record(event, redact_keys=keys, max_field_len=max_field_len)
        message = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        log.log(level, "%s", message, extra={"power_loop_event": record})

    return subscribe_filtered(bus, handle, events)
