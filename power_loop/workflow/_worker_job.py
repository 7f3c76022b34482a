"""What a subprocess leaf is told: `WorkerBootstrap` (how to build its model and tools) and the job.

Both cross the process boundary as JSON, so factories are named by import path (``"pkg.mod:func"``)
rather than passed as callables.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:  # the worker loads a provider or a tool preset only when its job asks for one
    from ..llm import LLMService
    from ..tools import ToolRegistry

__all__ = ["RESULT_PREFIX", "WorkerBootstrap", "WorkerJob", "load_factory"]

RESULT_PREFIX = "__POWERLOOP_WF_RESULT__ "
"""The stdout line carrying a worker's outcome: this prefix, then one JSON object."""

_FACTORY_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def load_factory(path: str) -> Any:
    """The object at ``"package.module:name"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class WorkerBootstrap:
    """How a worker process builds its model and tools.

    The model comes from exactly one of ``llm_from_env`` (``create_llm_service_from_env`` with
    ``provider_prefix``) or ``llm_factory`` (``"pkg.mod:func"``, called with no arguments). Tools:
    ``registry_factory`` (``"pkg.mod:func"``) or ``tool_preset`` (a built-in preset, rooted at
    ``workspace_dir``); neither = no tools. Invalid combinations raise `ConfigError`.
    """

    llm_from_env: bool = False
    provider_prefix: str | None = None
    llm_factory: str | None = None
    tool_preset: str | None = None
    registry_factory: str | None = None
    workspace_dir: str | None = None

    def __post_init__(self) -> None:
        if self.llm_from_env == (self.llm_factory is not None):
            raise ConfigError("WorkerBootstrap needs exactly one of llm_from_env=True or llm_factory")
        for name in ("llm_factory", "registry_factory"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _FACTORY_RE.fullmatch(value)):
                raise ConfigError(
                    f"WorkerBootstrap.{name} must be an import path 'pkg.module:name', got {value!r}"
                )
        if self.tool_preset is not None and self.registry_factory is not None:
            raise ConfigError("WorkerBootstrap takes tool_preset or registry_factory, not both")

    def build_llm(self) -> LLMService:
        """The worker's model."""
        if self.llm_factory is not None:
            llm: LLMService = load_factory(self.llm_factory)()
            return llm
        from ..llm import create_llm_service_from_env

        if self.provider_prefix is not None:
            return create_llm_service_from_env(prefix=self.provider_prefix)
        return create_llm_service_from_env()

    def build_registry(self) -> ToolRegistry | None:
        """The worker's tools (None = none)."""
        if self.registry_factory is not None:
            registry: ToolRegistry = load_factory(self.registry_factory)()
            return registry
        if self.tool_preset is not None:
            from ..tools import create_default_tool_registry

            return create_default_tool_registry(preset=self.tool_preset, workspace_dir=self.workspace_dir)
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerBootstrap:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class WorkerJob:
    """One leaf for a worker: the `AgentSpec` dict, its input, the worker's own SQLite file, the
    session id and metadata the leaf session gets, and the bootstrap."""

    spec: dict[str, Any]
    user_input: str
    db_path: str
    session_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The job as one JSON text (what the worker reads on stdin)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        """The inverse of :meth:`to_json`."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
