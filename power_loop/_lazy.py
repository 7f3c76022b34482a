"""Lazy public names: a package's ``__getattr__`` that imports a submodule on first access.

`import power_loop` (and its subpackages) stay cheap; a program pays only for the parts it touches
(SPEC §9). The loaded value is cached in the package namespace, so the hook runs once per name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_dir", "lazy_getattr"]


def lazy_getattr(package: str, names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``names`` (public name → relative module) for ``package``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(_import(_absolute(module, package)), name)
        namespace[name] = value
        return value

    return __getattr__


def lazy_dir(names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[], list[str]]:
    """A module ``__dir__`` listing the lazy names too, loaded or not (as an eager module would)."""

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __dir__


def _absolute(module: str, package: str) -> str:
    """``".x"`` / ``"..y"`` (or a bare ``"x"``, taken as ``".x"``) relative to ``package``, made absolute."""
    relative = module if module.startswith(".") else f".{module}"
    rest = relative.lstrip(".")
    base = package.rsplit(".", len(relative) - len(rest) - 1)[0]
    return f"{base}.{rest}"


def _import(absolute: str) -> Any:
    # The builtin import (not importlib.import_module) so `python -X importtime` charges the lazily
    # loaded module to itself, which the import benchmark relies on.
    __import__(absolute)
    return sys.modules[absolute]
