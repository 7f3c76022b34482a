"""``RuntimeEnv``: where tools run — workspace, home and skills directories, shell, shared board.

An application either binds tools to directories when it registers them, or registers them *unbound*
(``create_default_tool_registry(bind=False)``) and sets the environment per task with
``runtime_env_context(env)``: the tools then read :func:`get_runtime_env` at call time, so one registry
serves many workspaces (one per user, per job ...). Environment variables ``POWER_LOOP_WORKSPACE``,
``POWER_LOOP_HOME`` and ``POWER_LOOP_SKILLS_DIR`` fill what is not given.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import RuntimeEnvError

__all__ = [
    "ENV_HOME",
    "ENV_SKILLS_DIR",
    "ENV_WORKSPACE",
    "RuntimeEnv",
    "get_runtime_env",
    "runtime_env_context",
    "safe_path",
]

ENV_WORKSPACE = "POWER_LOOP_WORKSPACE"
ENV_HOME = "POWER_LOOP_HOME"
ENV_SKILLS_DIR = "POWER_LOOP_SKILLS_DIR"


def _absolute(value: str | os.PathLike[str] | None, variable: str) -> Path | None:
    chosen = value if value is not None else os.environ.get(variable) or None
    return None if chosen is None else Path(os.path.abspath(os.path.expanduser(os.fspath(chosen))))


@dataclass(frozen=True)
class RuntimeEnv:
    """The directories and services tools use. Every field is optional; tools that need a missing one
    raise :class:`~power_loop.errors.RuntimeEnvError` (code ``runtime_env.missing``).

    ``shell_backend`` runs ``bash`` (a :class:`~power_loop.tools.ShellBackend`); ``blackboard`` and
    ``blackboard_id`` are the shared board the ``board_*`` tools use (a
    :class:`~power_loop.agents.Blackboard`).
    """

    workspace_dir: Path | None = None
    home_dir: Path | None = None
    skills_dir: Path | None = None
    shell_backend: Any = None
    blackboard: Any = None
    blackboard_id: str | None = None

    @classmethod
    def from_env(
        cls,
        *,
        workspace_dir: str | os.PathLike[str] | None = None,
        home_dir: str | os.PathLike[str] | None = None,
        skills_dir: str | os.PathLike[str] | None = None,
        shell_backend: Any = None,
        blackboard: Any = None,
        blackboard_id: str | None = None,
    ) -> RuntimeEnv:
        """The given directories, else ``$POWER_LOOP_WORKSPACE`` / ``$POWER_LOOP_HOME`` /
        ``$POWER_LOOP_SKILLS_DIR``, as absolute paths (``~`` expanded)."""
        return cls(
            workspace_dir=_absolute(workspace_dir, ENV_WORKSPACE),
            home_dir=_absolute(home_dir, ENV_HOME),
            skills_dir=_absolute(skills_dir, ENV_SKILLS_DIR),
            shell_backend=shell_backend,
            blackboard=blackboard,
            blackboard_id=blackboard_id,
        )

    def _require(self, value: Path | None, what: str, variable: str) -> Path:
        if value is None:
            raise RuntimeEnvError(
                f"no {what} is configured: pass {what.replace(' ', '_')}= or run inside "
                f"runtime_env_context(RuntimeEnv(...)), or set ${variable}"
            )
        return value

    def require_workspace_dir(self) -> Path:
        """The workspace directory, or ``RuntimeEnvError``."""
        return self._require(self.workspace_dir, "workspace dir", ENV_WORKSPACE)

    def require_home_dir(self) -> Path:
        """The home directory, or ``RuntimeEnvError``."""
        return self._require(self.home_dir, "home dir", ENV_HOME)

    def require_skills_dir(self) -> Path:
        """The skills directory, or ``RuntimeEnvError``."""
        return self._require(self.skills_dir, "skills dir", ENV_SKILLS_DIR)

    @property
    def home_rw_allowlist(self) -> tuple[Path, ...]:
        """The parts of the home directory tools may use (``.cache``, ``logs``) and the skills dir."""
        allowed: list[Path] = []
        if self.home_dir is not None:
            allowed += [self.home_dir / ".cache", self.home_dir / "logs"]
        if self.skills_dir is not None:
            allowed.append(self.skills_dir)
        return tuple(allowed)


_CURRENT: contextvars.ContextVar[RuntimeEnv | None] = contextvars.ContextVar(
    "power_loop_runtime_env", default=None
)


@contextmanager
def runtime_env_context(env: RuntimeEnv) -> Iterator[RuntimeEnv]:
    """Make ``env`` the current environment inside the ``with`` block (per task: a contextvar)."""
    if not isinstance(env, RuntimeEnv):
        raise TypeError(f"runtime_env_context needs a RuntimeEnv, got {type(env).__name__}")
    token = _CURRENT.set(env)
    try:
        yield env
    finally:
        _CURRENT.reset(token)


def get_runtime_env() -> RuntimeEnv:
    """The current environment: the innermost ``runtime_env_context``, else one read from the
    ``POWER_LOOP_*`` variables."""
    current = _CURRENT.get()
    return current if current is not None else RuntimeEnv.from_env()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def safe_path(
    path: str | os.PathLike[str], purpose: Literal["r", "rw"] = "rw", *, env: RuntimeEnv | None = None
) -> Path:
    """Resolve ``path`` the way file tools may use it, or raise ``RuntimeEnvError``.

    Accepted: a relative path (under the workspace), an absolute path inside the workspace,
    ``@workspace/...``, and ``@home/...`` inside the home allowlist (``.cache``, ``logs``, the skills
    dir). Symlinks are resolved before the check, so one cannot point outside. ``purpose`` is kept for
    the published call shape; the same places are allowed for reading and writing.
    """
    current = env if env is not None else get_runtime_env()
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise RuntimeEnvError(f"path {text!r} is empty or contains a NUL character")
    if text == "@home" or text.startswith("@home/"):
        home = current.require_home_dir()
        real = Path(os.path.realpath(home / text[len("@home/") :]))
        allowed = [Path(os.path.realpath(p)) for p in current.home_rw_allowlist]
        if not any(_inside(real, root) for root in allowed):
            raise RuntimeEnvError(
                f"path {text!r} is outside the home allowlist ({', '.join(str(p) for p in allowed) or 'empty'})"
            )
        return real
    workspace = Path(os.path.realpath(current.require_workspace_dir()))
    if text == "@workspace" or text.startswith("@workspace/"):
        text = text[len("@workspace/") :] or "."
    real = Path(os.path.realpath(workspace / text))  # an absolute `text` replaces the workspace part
    if not _inside(real, workspace):
        raise RuntimeEnvError(f"path {os.fspath(path)!r} resolves outside the workspace {str(workspace)!r}")
    return real
