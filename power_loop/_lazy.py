"""Lazy public names: a package's ``__getattr__`` that imports a submodule on first access.

`import power_loop` (and its subpackages) stay cheap; a program pays only for the parts it touches
(SPEC §9). The loaded value is cached in the package namespace, so the hook runs once per name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``names`` (public name → relative module) for ``package``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        relative = module if module.startswith(".") else f".{module}"
        value = getattr(importlib.import_module(relative, package), name)
        namespace[name] = value
        return value

    return __getattr__
