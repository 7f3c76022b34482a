"""``view_image``: let the model look at an image in the workspace.

The path is resolved and opened through :class:`Workspace` (no ``..``, no symlink out of the root),
the bytes become an image part (``power_loop.attachment``) attached to the tool result: providers get
it as an image (Anthropic inside the ``tool_result``, OpenAI in a user message right after it), and
the store keeps it once per session in the attachments table.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..llm import attachment
from ._definition import ToolDefinition, ToolHandlerResult
from ._files import Workspace
from ._fsafe import read_fd
from ._registry import ToolRegistry
from ._runtime_env import get_runtime_env

__all__ = ["VIEW_IMAGE_DEFINITION", "register_view_image_tool"]

_MAX_IMAGE_BYTES = 10 * 1024 * 1024
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)

VIEW_IMAGE_DEFINITION = ToolDefinition(
    name="view_image",
    description="Look at an image file in the workspace (PNG, JPEG, GIF or WebP).",
    input_schema={
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "Path relative to the workspace root."}
        },
        "additionalProperties": False,
    },
    required_params=("path",),
)


class _ViewImage:
    __slots__ = ("_ws",)

    def __init__(self, ws: Workspace | None) -> None:
        self._ws = ws

    def __call__(self, path: str) -> ToolHandlerResult:
        ws = self._ws or Workspace(get_runtime_env().require_workspace_dir())
        target = ws.resolve(path)
        shown = ws.display(target)
        fd = ws.open(target, _READ)
        try:
            data = read_fd(fd, shown, _MAX_IMAGE_BYTES)
        finally:
            os.close(fd)
        try:
            part = attachment(data, filename=Path(shown).name)
        except ConfigError as exc:
            return ToolHandlerResult(ok=False, content=f"Error: {shown}: {exc}")
        if part["type"] != "image_url":
            return ToolHandlerResult(ok=False, content=f"Error: {shown} is not an image")
        return ToolHandlerResult(ok=True, content=f"{shown} ({len(data)} bytes):", parts=[part])


def register_view_image_tool(
    registry: ToolRegistry,
    workspace: str | os.PathLike[str] | Workspace | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Register ``view_image`` confined to ``workspace`` (``None``: the current ``RuntimeEnv``'s)."""
    ws = (
        None if workspace is None else workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    )
    registry.register(VIEW_IMAGE_DEFINITION, _ViewImage(ws), overwrite=overwrite)
