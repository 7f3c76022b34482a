"""``power_loop.tools`` imports with the standard library only (its ``__all__`` is pinned in
tests/test_public_api.py)."""

from __future__ import annotations

import subprocess
import sys


def test_imports_with_the_standard_library_only() -> None:
    code = (
        "import sys; import power_loop.tools; "
        "bad = [m for m in ('jsonschema', 'hypothesis', 'openai', 'anthropic', 'pytest') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
