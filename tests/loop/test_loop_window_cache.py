"""SPEC §2.2: a cold loop sends byte-identical requests to a warm one; the cache is bounded."""

from __future__ import annotations

import json
import random
from dataclasses import asdict

from loop_helpers import make_tools

from power_loop import AgentHooks, HookPoint, StatefulAgentLoop, open_store
from power_loop.testing import ScriptedLLM


def _scenario(seed: int) -> list[dict]:
    rng = random.Random(seed)
    steps = []
    for i in range(50):
        steps.append(
            {
                "text": f"message {i} " + "z" * rng.randint(0, 40),
                "calls": rng.choice([0, 0, 1, 2]),
                "prompt": rng.choice([None, None, "override prompt"]),
                "tools": rng.choice([None, None, ["a"], ["b"]]),
                "edit_prompt": rng.random() < 0.1,
            }
        )
    return steps


def _responder_for(steps: list[dict]):
    def responder(request):
        last = request.messages[-1]
        if last["role"] == "user":
            index = int(last["content"].split()[1])
            n = steps[index]["calls"]
            names = [t["function"]["name"] for t in request.tools or []]
            if n and names:
                return ScriptedLLM.tool_calls(
                    [(names[k % len(names)], {"x": f"{index}-{k}"}) for k in range(n)]
                )
        return ScriptedLLM.text(f"answer after {len(request.messages)} messages")

    return responder


def _hooks() -> AgentHooks:
    hooks = AgentHooks()

    def tag(ctx):
        ctx.output = f"[hooked] {ctx.output}"

    hooks.register(HookPoint.TOOL_AFTER, tag)
    return hooks


def _serialise(request) -> str:
    return json.dumps(asdict(request), sort_keys=True, default=str)


async def test_warm_and_cold_loops_send_identical_requests(target):
    steps = _scenario(seed=7)
    tools = make_tools(a=lambda x: f"a:{x}", b=lambda x: f"b:{x}")

    warm_llm = ScriptedLLM(responder=_responder_for(steps))
    warm = StatefulAgentLoop(llm=warm_llm, **target, tool_registry=tools, hooks=_hooks())
    warm_sid = await warm.new_session(system_prompt="session prompt")

    cold_llm = ScriptedLLM(responder=_responder_for(steps))
    # The cold session lives in the same database; requests carry no session id.
    setup = StatefulAgentLoop(llm=cold_llm, **target)
    cold_sid = await setup.new_session(system_prompt="session prompt")
    await setup.aclose()

    editor = await open_store(target["dsn"], table_prefix=target["table_prefix"])  # "another process"
    for i, step in enumerate(steps):
        if step["edit_prompt"]:
            await editor.update_session_prompt(warm_sid, f"edited prompt {i}")
            await editor.update_session_prompt(cold_sid, f"edited prompt {i}")
        kwargs = {"system_prompt": step["prompt"], "tools": step["tools"]}
        await warm.send(step["text"], warm_sid, **kwargs)
        cold = StatefulAgentLoop(
            llm=cold_llm, **target, tool_registry=tools, hooks=_hooks(), session_cache_size=0
        )
        await cold.send(step["text"], cold_sid, **kwargs)
        await cold.aclose()

    await editor.close()
    edits = sum(step["edit_prompt"] for step in steps)
    assert edits >= 2
    assert warm.cache_stats["hits"] >= 49 - edits
    assert any("edited prompt" in (r.system_prompt or "") for r in warm_llm.requests)
    assert len(warm_llm.requests) == len(cold_llm.requests) > 50
    for warm_request, cold_request in zip(warm_llm.requests, cold_llm.requests, strict=True):
        assert _serialise(warm_request) == _serialise(cold_request)
    await warm.aclose()


async def test_a_write_by_another_loop_invalidates_the_cache(target):
    llm_a = ScriptedLLM(default=ScriptedLLM.text("from a"))
    llm_b = ScriptedLLM(default=ScriptedLLM.text("from b"))
    a = StatefulAgentLoop(llm=llm_a, **target)
    b = StatefulAgentLoop(llm=llm_b, **target)
    sid = await a.new_session()
    await a.send("1", sid)
    await b.send("2", sid)
    await a.send("3", sid)
    assert [m["content"] for m in llm_a.requests[-1].messages] == ["1", "from a", "2", "from b", "3"]
    assert a.cache_stats["misses"] >= 2
    await a.aclose()
    await b.aclose()


async def test_cache_is_bounded_by_session_cache_size(target):
    loop = StatefulAgentLoop(llm=ScriptedLLM(default=ScriptedLLM.text("ok")), **target, session_cache_size=3)
    for _ in range(8):
        await loop.send("hi", await loop.new_session())
    stats = loop.cache_stats
    assert stats["entries"] == 3 and stats["evictions"] == 5
    assert await loop.prewarm("sess_missing") is False
    await loop.aclose()
