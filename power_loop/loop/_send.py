"""The send path: prepare the window's context, run the rounds, then the end of the send.

`StatefulAgentLoop` has already stored the user row (or found the send to continue) and loaded the
window; this runs the send on it and leaves the window current for the cache.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ..tools import ToolRuntimeContext, use_tool_runtime_context
from ._engine import SendRun

if TYPE_CHECKING:
    from ..events import AgentEventBus
    from ..llm import CancellationToken
    from ..tools import ToolRegistry
    from ._cache import SessionWindow
    from ._context_driver import ContextDriver
    from ._send_state import EngineParts
    from ._types import StatefulResult

__all__ = ["run_send"]


async def run_send(
    parts: EngineParts,
    session_id: str,
    window: SessionWindow,
    *,
    registry: ToolRegistry | None,
    context_registry: ToolRegistry | None,
    system_prompt: str,
    token: CancellationToken | None,
    runtime: ToolRuntimeContext,
    pending: dict[str, Any] | None = None,
    tap: AgentEventBus | None = None,
    new_send: bool = False,
) -> StatefulResult:
    """Run one send (``new_send``: its user row was just stored) or continue one (``pending``: the
    tool calls to re-execute first) on ``window``, with ``runtime`` set for the tool handlers.

    ``registry`` holds the tools offered to the model; ``context_registry`` (the loop's full
    registry) is what the context pipeline renders and folds with.
    """
    run = SendRun(
        parts, session_id, window, registry=registry, system_prompt=system_prompt, token=token, tap=tap
    )
    driver = None
    if parts.context is not None:
        driver = _context_driver(parts, session_id, window, context_registry)
        if new_send:
            # A send boundary: the only place a fold may run (it covers whole earlier sends).
            await driver.begin_send(
                llm=parts.llm, system_prompt=system_prompt, tools=run.state.tools, model=parts.config.model
            )
        else:
            await driver.continue_send()
    with use_tool_runtime_context(runtime):
        result = await run.run(pending=pending)
    if driver is not None:
        await driver.end_send(status=result.status, final_text=result.final_text, rounds=result.rounds)
    return result


def _context_driver(
    parts: EngineParts, session_id: str, window: SessionWindow, registry: ToolRegistry | None
) -> ContextDriver:
    assert parts.context is not None
    return _driver_class()(
        parts.context, parts.store, session_id, window, hooks=parts.hooks, bus=parts.bus, registry=registry
    )


@cache
def _driver_class() -> type[ContextDriver]:
    # Imported on first use, not at the top: it loads ``power_loop.context``, which only loops
    # constructed with a context pipeline need, so the plain loop's import stays free of it.
    # Memoized because an import statement costs microseconds on every send.
    from ._context_driver import ContextDriver

    return ContextDriver
