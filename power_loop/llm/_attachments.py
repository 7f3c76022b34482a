"""Content parts for multimodal messages: :func:`attachment` builds one, :func:`validate_parts` checks a
user message's list.

The in-memory and stored form is the chat-completions one: ``{"type": "text", "text"}``,
``{"type": "image_url", "image_url": {"url"}}`` (an ``https`` URL or a base64 ``data:`` URL) and
``{"type": "file", "file": {"filename", "file_data"}}`` (a base64 ``data:`` URL of a PDF). The
Anthropic adapter turns images and files into ``image`` / ``document`` blocks on the way out.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["IMAGE_MIME_TYPES", "MAX_ATTACHMENT_BYTES", "attachment", "data_url_parts", "validate_parts"]

IMAGE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""The image types every vision provider takes."""
_DOCUMENT_MIME = "application/pdf"
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""Larger payloads are refused: no provider takes them inline."""

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", _DOCUMENT_MIME),
)


def _sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_url_parts(url: str) -> tuple[str, bytes] | None:
    """``(mime, payload)`` of a base64 ``data:`` URL, ``None`` for anything else (or bad base64)."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    header, encoded = url[5:].split(";base64,", 1)
    try:
        return header or "application/octet-stream", base64.b64decode(encoded, validate=True)
    except ValueError:
        return None


def _part(mime: str, data: bytes, filename: str) -> dict[str, Any]:
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ConfigError(
            f"attachment {filename!r} is {len(data)} bytes; the limit is {MAX_ATTACHMENT_BYTES}"
        )
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    if mime in IMAGE_MIME_TYPES:
        return {"type": "image_url", "image_url": {"url": url}}
    if mime == _DOCUMENT_MIME:
        return {"type": "file", "file": {"filename": filename, "file_data": url}}
    raise ConfigError(
        f"attachment {filename!r} has type {mime!r}: only images ({', '.join(sorted(IMAGE_MIME_TYPES))}) "
        "and PDF documents can be attached"
    )


def attachment(
    source: str | Path | bytes, mime: str | None = None, *, filename: str | None = None
) -> dict[str, Any]:
    """A content part for a user message (or a tool result) from an image or a PDF.

    ``source`` is an ``http(s)`` URL (images only: kept as a URL), a ``data:`` URL, a local file path
    or the raw bytes. ``mime`` overrides the type, which is otherwise sniffed from the bytes or guessed
    from the file name. ::

        await loop.send({"role": "user", "content": [
            {"type": "text", "text": "What is on this chart?"},
            power_loop.attachment("chart.png"),
        ]}, sid)
    """
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        if mime == _DOCUMENT_MIME:
            raise ConfigError("a PDF must be attached as a file or bytes, not by URL")
        return {"type": "image_url", "image_url": {"url": source}}
    if isinstance(source, str) and source.startswith("data:"):
        decoded = data_url_parts(source)
        if decoded is None:
            raise ConfigError("a data URL attachment must be base64 encoded (data:<mime>;base64,...)")
        return _part(mime or decoded[0], decoded[1], filename or "attachment")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = filename or "attachment"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read attachment {str(path)!r}: {exc.strerror or exc}") from None
        name = filename or path.name
        mime = mime or _sniff(data) or mimetypes.guess_type(path.name)[0]
    else:
        raise ConfigError(f"attachment() takes a URL, a path or bytes, not {type(source).__name__}")
    kind = mime or _sniff(data)
    if kind is None:
        raise ConfigError(f"cannot tell the type of attachment {name!r}: pass mime='image/png' (or similar)")
    return _part(kind, data, name)


def _check_part(part: Any, index: int) -> None:
    where = f"content part {index}"
    if not isinstance(part, Mapping):
        raise ConfigError(f"{where} must be a dict, got {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise ConfigError(f"{where}: a text part needs a string 'text'")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:", "attachment:")):
            raise ConfigError(f"{where}: an image_url part needs image_url.url (an http(s) or data: URL)")
    elif kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, Mapping) else None
        if not isinstance(data, str) or not data.startswith(("data:", "attachment:")):
            raise ConfigError(f"{where}: a file part needs file.file_data (a base64 data: URL)")
    else:
        raise ConfigError(
            f"{where} has type {kind!r}: user content parts are 'text', 'image_url' and 'file' "
            "(build images and PDFs with power_loop.attachment())"
        )


def validate_parts(parts: Any) -> list[dict[str, Any]]:
    """Check a user message's content parts; returns them as a new list of dicts."""
    if not isinstance(parts, list) or not parts:
        raise ConfigError("a user message's 'content' must be a string or a non-empty list of content parts")
    for index, part in enumerate(parts):
        _check_part(part, index)
    return [dict(part) for part in parts]
