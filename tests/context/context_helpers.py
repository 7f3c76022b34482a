"""A miniature round engine driving `ContextPipeline` exactly as the real engine is meant to.

It persists through the real store and keeps a real `SessionWindow`, so the tests exercise the
pipeline's warm path (cached window advanced send by send) and cold path (window rebuilt from rows).
The pipeline's decisions are acted on by the loop's own `ContextDriver` (hooks, events, store writes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from power_loop.context import ContextPipeline, check_messages, row_message
from power_loop.events import AgentEventBus
from power_loop.hooks import AgentHooks
from power_loop.loop._cache import SessionWindow
from power_loop.loop._context_driver import ContextDriver
from power_loop.store import NewMessage, SessionStore
from power_loop.testing import ScriptedLLM

Call = tuple[str, dict[str, Any], str]  # tool name, arguments, result text


def summary_llm() -> ScriptedLLM:
    """A summariser whose answer depends only on the request (so two runs agree)."""

    def respond(request: Any) -> str:
        text = request.messages[-1]["content"]
        sends = sorted(set(int(part.split(">")[0]) for part in text.split("<send index=")[1:]))
        return f"<summary>folded sends {sends} ({len(text)} chars)</summary>"

    return ScriptedLLM(responder=respond, record_requests=False)


def usage_for(messages: list[dict[str, Any]]) -> int:
    """A deterministic 'reported' prompt-token count (about 3 characters per token)."""
    return max(1, len(json.dumps(messages)) // 3)


@dataclass
class Driver:
    store: SessionStore
    sid: str
    pipeline: ContextPipeline
    llm: Any = None
    registry: Any = None
    hooks: Any = None
    bus: Any = None
    model: str = "m"
    warm: bool = True
    window: SessionWindow | None = None
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)
    ids: int = 0

    async def _cold_window(self) -> SessionWindow:
        state = await self.store.get_state(self.sid)
        assert state is not None
        rows = await self.store.load_active_messages(self.sid)
        return SessionWindow(
            messages=[row_message(r) for r in rows],
            next_seq=state.next_seq,
            system_prompt=None,
            send_index=state.send_index,
        )

    async def _commit(self, messages: list[NewMessage]) -> None:
        assert self.window is not None
        result = await self.store.append_messages(self.sid, messages)
        assert result.first_seq == self.window.next_seq
        for m in messages:
            msg: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                msg["tool_calls"] = m.tool_calls
            if m.tool_call_id is not None:
                msg["tool_call_id"] = m.tool_call_id
            if m.name is not None:
                msg["name"] = m.name
            self.window.messages.append(msg)
        self.window.next_seq = result.next_seq

    def _request(self) -> list[dict[str, Any]]:
        assert self.window is not None
        request = self.pipeline.request_messages(self.window)
        problem = check_messages(request)
        assert problem is None, problem
        self.requests.append(request)
        self.pipeline.observe(
            self.window, model=self.model, messages=request, prompt_tokens=usage_for(request)
        )
        return request

    async def send(self, text: str, rounds: list[list[Call]] | None = None, final: str = "done") -> Any:
        appended = await self.store.append_messages(
            self.sid, [NewMessage(role="user", content=text, round_index=0)], begin_send=True
        )
        window = self.window if self.warm else None
        if window is not None and window.next_seq == appended.first_seq:
            window.messages.append({"role": "user", "content": text})
            window.next_seq = appended.next_seq
        else:
            window = await self._cold_window()
        window.send_index = appended.send_index
        self.window = window
        driver = self.driver_for(window)
        outcome = await driver.begin_send(llm=self.llm, model=self.model)
        self.outcomes.append(outcome)
        for round_index, calls in enumerate(rounds or []):
            self._request()
            tool_calls = []
            for name, args, _ in calls:
                self.ids += 1
                tool_calls.append(
                    {
                        "id": f"c{self.ids}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                )
            await self._commit(
                [NewMessage(role="assistant", content="", tool_calls=tool_calls, round_index=round_index)]
            )
            await self._commit(
                [
                    NewMessage(
                        role="tool", content=result, tool_call_id=tc["id"], name=name, round_index=round_index
                    )
                    for tc, (name, _, result) in zip(tool_calls, calls, strict=True)
                ]
            )
        self._request()
        await self._commit([NewMessage(role="assistant", content=final, round_index=len(rounds or []))])
        await driver.end_send(status="completed", final_text=final)
        if not self.warm:
            self.window = None
        return outcome

    async def cold_messages(self) -> list[dict[str, Any]]:
        """What a brand-new loop would build for this session right now."""
        window = await self._cold_window()
        await self.driver_for(window).attach(recall=False)
        return window.messages

    def driver_for(self, window: SessionWindow) -> ContextDriver:
        return ContextDriver(
            self.pipeline,
            self.store,
            self.sid,
            window,
            hooks=self.hooks if self.hooks is not None else AgentHooks(),
            bus=self.bus if self.bus is not None else AgentEventBus(),
            registry=self.registry,
        )
