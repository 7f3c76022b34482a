"""``power_loop.llm`` and ``power_loop.testing`` import with the standard library only (their
``__all__`` is pinned in tests/test_public_api.py)."""

from __future__ import annotations

import subprocess
import sys


def test_import_needs_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "for blocked in ('openai', 'anthropic', 'httpx', 'pydantic'):\n"
        "    sys.modules[blocked] = None\n"
        "import power_loop.llm, power_loop.testing\n"
        "loaded = [m for m in ('openai', 'anthropic', 'email', 'http') if sys.modules.get(m) is not None]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
