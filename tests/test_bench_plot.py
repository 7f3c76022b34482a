"""`python -m bench --plot` renders its PNGs from a results structure (the benchmark itself never runs here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import plot_data
from bench._plot import FIGURES, INSTALL_HINT, render

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def small_results() -> dict[str, Any]:
    return {
        "label": "test data",
        "history": {
            "lengths": [0, 10, 100],
            "warm_ms": [0.3, 0.35, 0.6],
            "cold_ms": [1.0, 1.4, 3.0],
            "warm_context_ms": [0.4, 0.4, 0.45],
            "cold_context_ms": [1.1, 1.2, 1.2],
        },
        "backends": {
            "SQLite": {"floor_ms": 0.03, "text_send_ms": 0.25, "tool_send_ms": 0.6},
            "PostgreSQL": {"floor_ms": 0.5, "text_send_ms": 1.1, "tool_send_ms": 2.4},
        },
        "concurrency": {"sessions": [1, 5, 40], "sends_per_s": [2000.0, 5000.0, 9000.0]},
        "imports": {"floor": 25.0, "from power_loop import StatefulAgentLoop": 33.0, "own share": 7.0},
    }


def test_render_writes_one_valid_png_per_figure(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = render(small_results(), tmp_path / "images")
    assert [p.name for p in written] == [f"bench-{name}.png" for name in FIGURES]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), path
        assert data[12:16] == b"IHDR" and len(data) > 2000, path


def test_render_skips_figures_without_data(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = small_results()
    del data["backends"]
    data["imports"] = {}
    written = render(data, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench-concurrency.png", "bench-history.png"]
    assert len(written) == 2


def test_without_matplotlib_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(SystemExit) as exc:
        render(small_results(), tmp_path)
    assert str(exc.value) == INSTALL_HINT
    assert "pip install matplotlib" in INSTALL_HINT and ".[bench]" in INSTALL_HINT
    assert not list(tmp_path.iterdir())


def test_plot_data_gathers_the_figures_of_one_run() -> None:
    results = {
        "floor_text_send_ms": 0.03,
        "text_send_ms": 0.25,
        "tool_send_ms": 0.6,
        "import_ms": 7.0,
        "import_loop_own_ms": 8.0,
        "import_loop_wall_ms": 33.0,
        "import_floor_wall_ms": 25.0,
    }
    series = {
        "history": small_results()["history"],
        "concurrency": small_results()["concurrency"],
        "backends": {
            "postgres": {"floor_commit_ms": 0.5, "text_send_ms": 1.1, "tool_send_ms": 2.4},
            "mysql": {"skipped": "ConnectionRefusedError"},
        },
    }
    data = plot_data(results, series, "label")
    assert list(data["backends"]) == ["SQLite", "PostgreSQL"]  # an unreachable server is left out
    assert data["backends"]["SQLite"] == {"floor_ms": 0.03, "text_send_ms": 0.25, "tool_send_ms": 0.6}
    assert sorted(data["imports"].values()) == [7.0, 8.0, 25.0, 33.0]
    assert data["history"] is series["history"] and data["label"] == "label"
