"""Bounding the images a request carries: ``AgentLoopConfig.image_retention_rounds``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["IMAGE_PLACEHOLDER", "retain_images"]

IMAGE_PLACEHOLDER = "[image omitted: shown {rounds} or more rounds ago]"
_IMAGE_TYPES = frozenset({"image_url", "image"})


def _strip(content: list[Any], rounds: int) -> list[Any]:
    text = IMAGE_PLACEHOLDER.format(rounds=rounds)
    return [
        {"type": "text", "text": text}
        if isinstance(part, Mapping) and part.get("type") in _IMAGE_TYPES
        else part
        for part in content
    ]


def retain_images(messages: list[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    """``messages`` with the images of messages followed by ``rounds`` or more assistant turns
    replaced by a text placeholder. Changed messages are copies; the window is never mutated."""
    out: list[dict[str, Any]] = []
    later = 0  # assistant turns after the message being looked at
    for message in reversed(messages):
        content = message.get("content")
        if (
            later >= rounds
            and isinstance(content, list)
            and any(isinstance(p, Mapping) and p.get("type") in _IMAGE_TYPES for p in content)
        ):
            message = {**message, "content": _strip(content, rounds)}
        out.append(message)
        if message.get("role") == "assistant":
            later += 1
    out.reverse()
    return out
