"""Write events to a size-rotated JSON Lines file, and read them back with :func:`replay`.

Each line is one :meth:`AgentEvent.to_dict` object whose ``payload`` went through
:func:`~power_loop.contrib._redact.sanitize` (secrets redacted, long strings cut). The envelope
(``type``, ``session_id``, ``ts``, ``seq``, ``mono``, ...) is written as is, so a replayed event keeps its
original stamps and order.

Rotation mirrors :class:`logging.handlers.RotatingFileHandler`: when the next line would push ``path``
past ``max_bytes`` it becomes ``path.1`` (``path.1`` → ``path.2`` …, ``path.<backup_count>`` is
dropped). Every line is flushed as it is written, so a crashed process loses at most the line in flight.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import ConfigError, PowerLoopError
from ..events import AgentEvent, AgentEventType, EventBusProtocol
from ._redact import resolve_redact, sanitize_payload
from ._subscribe import subscribe_filtered

__all__ = ["DEFAULT_MAX_BYTES", "JsonlSink", "attach_jsonl_sink", "replay"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


class JsonlSink:
    """An append-only, size-rotated JSON Lines file; safe to write from several threads.

    ``max_bytes=0`` never rotates; ``backup_count=0`` truncates ``path`` instead of keeping backups.
    Use :func:`attach_jsonl_sink` to feed it from a bus; :meth:`close` detaches it and closes the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backup_count: int = 5,
        max_field_len: int = 2000,
        redact_keys: Iterable[str] | None = None,
    ) -> None:
        if max_bytes < 0 or backup_count < 0:
            raise ConfigError(f"max_bytes and backup_count must be >= 0, got {max_bytes!r}, {backup_count!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self.max_field_len = max_field_len
        self.redact_keys = resolve_redact(redact_keys)
        self.lines_written = 0
        self._lock = threading.Lock()
        self._detach: Callable[[], None] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Held open for the sink's whole life (one open per line would dominate the cost); close() ends it.
        self._file: IO[bytes] | None = open(self.path, "ab")
        self._size = self._file.tell()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._file is None

    def handle(self, event: AgentEvent) -> None:
        """Serialise ``event`` (payload sanitised) and append it as one line; a bus handler."""
        record = event.to_dict()
        record["payload"] = sanitize_payload(
            event, redact_keys=self.redact_keys, max_field_len=self.max_field_len
        )
        self.write_line(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str))

    def write_line(self, line: str) -> None:
        """Append ``line`` (a newline is added), rotating first when it would overflow ``max_bytes``."""
        data = line.rstrip("\n").encode("utf-8") + b"\n"
        with self._lock:
            if self._file is None:
                raise PowerLoopError(f"JsonlSink for {self.path} is closed")
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            assert self._file is not None
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
            self.lines_written += 1

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        if self.backup_count:
            for index in range(self.backup_count - 1, 0, -1):
                src = _backup(self.path, index)
                if src.exists():
                    os.replace(src, _backup(self.path, index + 1))
            os.replace(self.path, _backup(self.path, 1))
        self._file = open(self.path, "wb")
        self._size = 0

    def close(self) -> None:
        """Unsubscribe from the bus (if attached) and close the file; idempotent."""
        detach, self._detach = self._detach, None
        if detach is not None:
            detach()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r}, lines_written={self.lines_written}, closed={self.closed})"


def _backup(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def attach_jsonl_sink(
    bus: EventBusProtocol,
    path: str | os.PathLike[str],
    *,
    events: Iterable[AgentEventType | str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backup_count: int = 5,
    max_field_len: int = 2000,
    redact_keys: Iterable[str] | None = None,
) -> JsonlSink:
    """Write every event (or only ``events``) published on ``bus`` to ``path``; ``sink.close()`` stops.

    ``redact_keys=None`` uses :data:`~power_loop.contrib._redact.DEFAULT_REDACT_KEYS`; ``()`` disables
    key-based redaction (DSN passwords and bearer tokens inside strings are still scrubbed).
    """
    sink = JsonlSink(
        path,
        max_bytes=max_bytes,
        backup_count=backup_count,
        max_field_len=max_field_len,
        redact_keys=redact_keys,
    )
    try:
        sink._detach = subscribe_filtered(bus, sink.handle, events)
    except BaseException:
        sink.close()
        raise
    return sink


_BACKUP_SUFFIX = re.compile(r"\.(\d+)$")


def replay(path: str | os.PathLike[str]) -> Iterator[AgentEvent]:
    """Yield the events stored at ``path`` and its backups, oldest file first, in file order.

    Lines that are not a JSON object of a known event type are skipped. Each event keeps its original
    ``ts``, ``seq`` and ``mono``; ``payload`` is the (sanitised) dict that was written.
    """
    base = Path(path)
    backups: list[tuple[int, Path]] = []
    if base.parent.is_dir():
        for candidate in base.parent.iterdir():
            if candidate.name.startswith(base.name + "."):
                match = _BACKUP_SUFFIX.fullmatch(candidate.name[len(base.name) :])
                if match:
                    backups.append((int(match.group(1)), candidate))
    files = [p for _, p in sorted(backups, reverse=True)]
    if base.exists():
        files.append(base)
    for file in files:
        with open(file, "rb") as handle:
            for raw in handle:
                event = _parse(raw)
                if event is not None:
                    yield event


def _parse(raw: bytes) -> AgentEvent | None:
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            return None
        return AgentEvent.from_dict(record)
    except (ValueError, KeyError, TypeError, PowerLoopError):
        # ValueError covers bad JSON/UTF-8 and bad numbers; PowerLoopError an unknown event type.
        return None
