"""Render the benchmark figures as PNG files (``python -m bench --plot``).

``render(data, out_dir)`` takes the plot data of one run (see ``bench.__main__.plot_data``) and
writes one PNG per figure it has data for; matplotlib is imported only here, on first use, with the
Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["FIGURES", "render"]

FIGURES = ("history", "backends", "concurrency", "imports")
INSTALL_HINT = (
    "the benchmark plots need matplotlib: pip install matplotlib  (in a checkout: pip install -e '.[bench]')"
)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise SystemExit(INSTALL_HINT) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _history(plt: Any, data: dict[str, Any], subtitle: str) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = data["lengths"]
    ax.plot(x, data["warm_ms"], "o-", label="warm send, no context pipeline")
    ax.plot(x, data["warm_context_ms"], "o-", label="warm send, ContextPipeline.default()")
    ax.plot(x, data["cold_ms"], "s--", label="cold first send (new loop), no pipeline")
    ax.plot(x, data["cold_context_ms"], "s--", label="cold first send (new loop), with pipeline")
    ax.set_xlabel("sends already in the session")
    ax.set_ylabel("ms per send (median)")
    ax.set_title(f"Per-send cost against history length (SQLite){subtitle}")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig


def _backends(plt: Any, data: dict[str, dict[str, float]], subtitle: str) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = list(data)
    series = [("floor_ms", "raw driver floor"), ("text_send_ms", "text send"), ("tool_send_ms", "tool send")]
    width = 0.26
    for i, (key, label) in enumerate(series):
        xs = [j + (i - 1) * width for j in range(len(names))]
        values = [data[name][key] for name in names]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.margins(y=0.12)
    ax.set_ylabel("ms (median)")
    ax.set_title(f"Backends beside their raw floors{subtitle}")
    ax.legend(fontsize=8)
    return fig


def _concurrency(plt: Any, data: dict[str, Any], subtitle: str) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(data["sessions"], data["sends_per_s"], "o-")
    ax.set_xscale("log")
    ax.set_xticks(data["sessions"], [str(n) for n in data["sessions"]])
    ax.set_xlabel("sessions sending at once on one loop")
    ax.set_ylabel("sends per second")
    ax.set_title(f"Concurrency scaling (SQLite){subtitle}")
    ax.set_ylim(bottom=0)
    return fig


def _imports(plt: Any, data: dict[str, float], subtitle: str) -> Any:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = list(data)
    bars = ax.barh(labels, [data[k] for k in labels])
    ax.bar_label(bars, fmt="%.1f ms", fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.18)  # room for the value labels
    ax.set_xlabel("ms (median over fresh interpreters)")
    ax.set_title(f"Import time{subtitle}")
    return fig


_DRAW = {"history": _history, "backends": _backends, "concurrency": _concurrency, "imports": _imports}


def render(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``bench-<figure>.png`` into ``out_dir`` for every figure in ``data``; return the paths."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    subtitle = f"\n{data['label']}" if data.get("label") else ""
    written = []
    for name in FIGURES:
        if not data.get(name):
            continue
        fig = _DRAW[name](plt, data[name], subtitle)
        fig.tight_layout()
        path = out_dir / f"bench-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
