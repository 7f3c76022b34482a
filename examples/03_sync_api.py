"""The synchronous API for scripts and frameworks without an event loop.

Run it::

    python examples/03_sync_api.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from power_loop import StatefulAgentLoop
from power_loop.testing import ScriptedLLM


def demo(workdir: Path) -> None:
    dsn = str(workdir / "sync.db")
    loop = StatefulAgentLoop(llm=ScriptedLLM([ScriptedLLM.text("Hello from a blocking call.")]), dsn=dsn)
    try:
        sid = loop.new_session_sync()
        result = loop.send_sync("Hi!", sid)
        print(result.status, result.final_text)
        assert result.status == "completed"
    finally:
        loop.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # removed afterwards: the example leaves nothing behind
        demo(Path(tmp))


if __name__ == "__main__":
    main()
