"""The docs site (mkdocs.yml, built with `mkdocs build --strict` in .ci/run) covers what it should.

The strict build itself checks links and cross-references; these checks keep the site's shape true
when the package or the guide grows: every guide page is in the nav, every public subpackage has a
generated API page, and the top-level reference lists exactly the names ``power_loop`` re-exports.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import power_loop

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_every_page_is_in_the_nav() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    in_nav = set(re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$", MKDOCS, re.M))
    assert pages == in_nav


def test_every_public_subpackage_has_an_api_page() -> None:
    documented = set(re.findall(r"^::: (\S+)$", _reference_text(), re.M))
    subpackages = [m.name for m in pkgutil.iter_modules(power_loop.__path__, "power_loop.") if m.ispkg]
    wanted = {m for m in subpackages if getattr(importlib.import_module(m), "__all__", None)}
    wanted |= {"power_loop", "power_loop.contrib"}
    assert wanted <= documented, sorted(wanted - documented)


def render_top_level() -> str:
    """docs/reference/power_loop.md: the package docstring, then every re-export linked to its home."""
    lines = [
        "# `power_loop`",
        "",
        "The top-level package re-exports, lazily, the names most applications need; each is defined (and",
        "documented) in a subpackage. `STABLE_API` lists the names that never change within a major version.",
        "",
        "::: power_loop",
        "    options:",
        "      members: false",
        "",
    ]
    for module, names in power_loop._EXPORTS.items():
        lines += [f"## From [`power_loop.{module}`]({module}.md)", ""]
        lines += [", ".join(f"[`{n}`][power_loop.{module}.{n}]" for n in names), ""]
    return "\n".join(lines)


def test_top_level_reference_lists_exactly_the_reexports() -> None:
    text = (DOCS / "reference" / "power_loop.md").read_text(encoding="utf-8")
    assert text == render_top_level(), "regenerate it: python tests/test_docs_site.py"


def _reference_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((DOCS / "reference").glob("*.md")))


if __name__ == "__main__":
    (DOCS / "reference" / "power_loop.md").write_text(render_top_level(), encoding="utf-8")
