"""Token estimation: the fixed 4-chars estimate, the calibrating estimator, pair-safe trimming."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.context import (
    TokenEstimator,
    check_messages,
    estimate_message_tokens,
    estimate_text_tokens,
    estimate_tokens,
    trim_history,
)
from power_loop.errors import ConfigError


def test_text_estimate_is_four_chars_per_token() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens(None) == 0
    assert estimate_text_tokens("abc") == 1
    assert estimate_text_tokens("a" * 400) == 100


def test_message_estimate_counts_content_calls_and_name() -> None:
    plain = {"role": "user", "content": "a" * 40}
    assert estimate_message_tokens(plain) == (16 + 40) // 4
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert estimate_message_tokens(call) > estimate_message_tokens({"role": "assistant", "content": ""})
    named = {"role": "tool", "content": "x", "name": "a_long_tool_name", "tool_call_id": "c1"}
    assert estimate_message_tokens(named) > estimate_message_tokens({"role": "tool", "content": "x"})
    parts = {"role": "user", "content": [{"type": "text", "text": "b" * 80}]}
    assert estimate_message_tokens(parts) == (16 + 80) // 4
    assert estimate_tokens([plain, plain]) == 2 * estimate_message_tokens(plain)


def test_estimator_starts_at_default_and_calibrates_per_model() -> None:
    est = TokenEstimator()
    assert est.chars_per_token("gpt") == 4.0
    assert est.observe("gpt", chars=3000, prompt_tokens=1000)
    assert est.chars_per_token("gpt") == pytest.approx(3.0)  # the first sample is taken as is
    assert est.chars_per_token("claude") == 4.0  # other models untouched
    est.observe("gpt", chars=2000, prompt_tokens=1000)
    assert est.chars_per_token("gpt") == pytest.approx(0.7 * 3.0 + 0.3 * 2.0)
    assert est.samples("gpt") == 2
    assert est.estimate_text("x" * 300, "gpt") == pytest.approx(300 / est.chars_per_token("gpt"), abs=1)


def test_estimator_ignores_useless_and_out_of_range_reports() -> None:
    est = TokenEstimator(min_chars_per_token=1.0, max_chars_per_token=12.0)
    assert not est.observe("m", chars=100, prompt_tokens=None)
    assert not est.observe("m", chars=100, prompt_tokens=0)
    assert not est.observe("m", chars=0, prompt_tokens=10)
    assert not est.observe("m", chars=10_000, prompt_tokens=1)  # e.g. a fully cached prompt
    assert not est.observe("m", chars=1, prompt_tokens=1000)
    assert est.samples("m") == 0 and est.chars_per_token("m") == 4.0
    assert est.observe("m", chars=1200, prompt_tokens=100)
    assert not est.observe("m", chars=100_000, prompt_tokens=100)
    assert est.chars_per_token("m") == 12.0 and est.samples("m") == 1
    est.load_dict({"x": {"chars_per_token": 99.0, "samples": 3}})
    assert est.chars_per_token("x") == 12.0  # stored values are bounded too


def test_estimator_calibration_round_trips_through_json() -> None:
    est = TokenEstimator()
    est.observe("a", chars=3333, prompt_tokens=1000)
    est.observe("a", chars=2900, prompt_tokens=1000)
    est.observe(None, chars=5000, prompt_tokens=1000)
    data = json.loads(json.dumps(est.to_dict()))
    other = TokenEstimator()
    other.load_dict(data)
    assert other.to_dict() == est.to_dict()
    assert other.chars_per_token("a") == est.chars_per_token("a")
    other.load_dict({"bad": "x", "worse": {"chars_per_token": "3", "samples": 1}})
    assert other.to_dict() == {}


def test_calibrated_estimate_tracks_the_reported_truth() -> None:
    est = TokenEstimator()
    messages = [{"role": "user", "content": "word " * 200}]
    true_tokens = 220  # a tokenizer that packs about 4.9 characters per token
    for _ in range(20):
        est.observe_request("m", messages, prompt_tokens=true_tokens)
    assert abs(est.estimate(messages, "m") - true_tokens) <= 2
    assert abs(estimate_tokens(messages) - true_tokens) > 20  # the fixed guess is far off


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0}, {"alpha": 1.5}, {"default_chars_per_token": 20}, {"min_chars_per_token": 0}],
)
def test_estimator_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        TokenEstimator(**kwargs)


def _history(spec: list[int]) -> list[dict[str, Any]]:
    """0 → user text, n>0 → assistant with n calls + their results, -1 → assistant text."""
    out: list[dict[str, Any]] = [{"role": "system", "content": "sys"}]
    call_id = 0
    for item in spec:
        if item == 0:
            out.append({"role": "user", "content": "u" * 50})
        elif item < 0:
            out.append({"role": "assistant", "content": "a" * 50})
        else:
            ids = [f"c{call_id + i}" for i in range(item)]
            call_id += item
            out.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": i, "type": "function", "function": {"name": "t", "arguments": "{}"}}
                        for i in ids
                    ],
                }
            )
            out.extend({"role": "tool", "tool_call_id": i, "content": "r" * 80} for i in ids)
    return out


@settings(max_examples=80, deadline=None)
@given(
    spec=st.lists(st.integers(min_value=-1, max_value=3), max_size=25),
    budget=st.integers(min_value=0, max_value=600),
    keep=st.integers(min_value=0, max_value=4),
)
def test_trim_history_never_splits_pairs(spec: list[int], budget: int, keep: int) -> None:
    messages = _history(spec)
    trimmed = trim_history(messages, budget, keep_last_n=keep)
    if budget == 0:
        assert trimmed == []
        return
    assert trimmed[0] == {"role": "system", "content": "sys"}
    assert check_messages(trimmed[1:]) is None
    # A suffix of the original: trimming only ever drops from the front.
    assert trimmed[1:] == messages[len(messages) - len(trimmed) + 1 :]
    exchanges_left = sum(1 for m in trimmed[1:] if m["role"] == "user")
    if len(trimmed) < len(messages):
        # Whole exchanges go: what is left starts with a user message (or nothing is left).
        assert len(trimmed) == 1 or trimmed[1]["role"] == "user"
        # It only stops trimming once it fits or hits the protected tail.
        assert estimate_tokens(trimmed) <= budget or exchanges_left <= keep


def test_trim_history_counts_user_exchanges_and_budget_zero_is_empty() -> None:
    # system, (user, assistant), (user, calls+results, assistant), (user, assistant)
    messages = _history([0, -1, 0, 2, -1, 0, -1])
    full = estimate_tokens(messages)
    assert trim_history(messages, full) == messages
    assert trim_history(messages, 0) == []
    one = trim_history(messages, 25, keep_last_n=1)
    assert one == [messages[0], *messages[-2:]]
    assert one[1]["role"] == "user"
    two = trim_history(messages, 25, keep_last_n=2)
    assert two[1]["role"] == "user" and two[1:] == messages[3:]
    no_system = trim_history(messages, 1, keep_system=False, keep_last_n=1)
    assert no_system == messages[-2:]
    # A history opening with an assistant greeting loses it first, never leaving it at the front.
    greeted = [messages[0], {"role": "assistant", "content": "hello " * 40}, *messages[1:]]
    assert trim_history(greeted, full)[1]["role"] == "user"
    calibrated = TokenEstimator(default_chars_per_token=2.0)
    assert len(trim_history(messages, 100, estimator=calibrated)) <= len(trim_history(messages, 100))
    with pytest.raises(ConfigError):
        trim_history(messages, -1)
