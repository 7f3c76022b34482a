"""mkdocs hook: docstrings use Sphinx roles (:class:`X`); show them as plain code in the API pages."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **_: Any) -> str:
    """Drop the role prefix left before each ``<code>`` span."""
    return _ROLE.sub("", html)
