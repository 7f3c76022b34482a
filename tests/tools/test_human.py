from __future__ import annotations

import json
import re

import pytest

from power_loop.errors import ConfigError
from power_loop.tools import (
    REQUEST_USER_INPUT_DEFINITION,
    HumanInputRequired,
    ToolRegistry,
    register_request_user_input,
    request_user_input,
)


def test_request_user_input_raises_with_fields() -> None:
    with pytest.raises(HumanInputRequired) as info:
        request_user_input(
            prompt="Pick one", kind="choice", options=["a", {"id": "b", "label": "Bee"}], metadata={"k": 1}
        )
    exc = info.value
    assert (exc.kind, exc.prompt, exc.metadata) == ("choice", "Pick one", {"k": 1})
    assert exc.options == [{"id": "a", "label": "a"}, {"id": "b", "label": "Bee"}]
    assert re.fullmatch(r"input_[0-9a-f]{16}", exc.interaction_id)
    assert str(exc) == "Pick one"


def test_interaction_ids_are_unique_and_defaults_empty() -> None:
    a, b = HumanInputRequired(prompt="x"), HumanInputRequired(prompt="x")
    assert a.interaction_id != b.interaction_id
    assert a.kind == "text" and a.options == [] and a.metadata == {}


def test_to_pending_round_trips_through_json() -> None:
    exc = HumanInputRequired(
        kind="confirm", prompt="Deploy?", options=[{"id": "y", "label": "Yes"}], metadata={"env": "prod"}
    )
    record = exc.to_pending(tool_call_id="call_7")
    assert record == {
        "interaction_id": exc.interaction_id,
        "tool_call_id": "call_7",
        "tool_name": "request_user_input",
        "kind": "confirm",
        "prompt": "Deploy?",
        "options": [{"id": "y", "label": "Yes"}],
        "metadata": {"env": "prod"},
    }
    assert exc.to_pending(tool_call_id="c", tool_name="ask")["tool_name"] == "ask"
    again = HumanInputRequired.from_pending(json.loads(json.dumps(record)))
    assert again.to_pending(tool_call_id="call_7") == record


@pytest.mark.parametrize(
    "bad",
    [{"prompt": ""}, {"prompt": "ok", "options": [3]}, {"prompt": "ok", "options": [{"label": "no id"}]}],
)
def test_bad_python_calls_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        request_user_input(**bad)  # type: ignore[arg-type]


async def test_registered_tool_validates_then_raises() -> None:
    reg = ToolRegistry()
    register_request_user_input(reg)
    assert reg.definitions() == [REQUEST_USER_INPUT_DEFINITION]
    assert reg.get("request_user_input").is_async  # type: ignore[union-attr]
    assert reg.validate("request_user_input", {}) is not None
    assert reg.validate("request_user_input", {"prompt": "x", "options": [{"id": "a"}]}) is not None
    with pytest.raises(HumanInputRequired) as info:
        await reg.invoke_async("request_user_input", {"prompt": "Name?", "metadata": {"ui": "modal"}})
    assert info.value.metadata == {"ui": "modal"}
    with pytest.raises(Exception, match="already registered"):
        register_request_user_input(reg)
    register_request_user_input(reg, overwrite=True)
