"""``{{name}}`` templating: variables first (``input``, foreach items, ``iteration``), then node results."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TEMPLATE_RE", "render", "to_text"]

TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][\w\-]*(?:\.[A-Za-z_]\w*)?)\s*\}\}")
"""``{{ var }}``, ``{{ node_id }}`` (a node's text) or ``{{ node_id.key }}`` (a payload key)."""


def to_text(value: Any) -> str:
    """How a value is spliced into a prompt: strings as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def render(template: str, env: Mapping[str, Any], lookup: Callable[[str], Any | None]) -> str:
    """Substitute each placeholder from ``env`` or, failing that, ``lookup(ref)`` (None = unknown).

    Unknown names are left as written, so a literal ``{{x}}`` a prompt means to show survives.
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in env:
            return to_text(env[name])
        found = lookup(name)
        return match.group(0) if found is None else to_text(found)

    return TEMPLATE_RE.sub(sub, template)
