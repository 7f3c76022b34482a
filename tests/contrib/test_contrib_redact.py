"""The shared redaction helpers: key-based, value-based, truncation, capping."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from hypothesis import given, settings
from hypothesis import strategies as st

from power_loop.contrib._redact import (
    DEFAULT_REDACT_KEYS,
    REDACTED,
    resolve_redact,
    sanitize,
    sanitize_payload,
    scrub_text,
)
from power_loop.events import AgentEvent, AgentEventType


def test_default_keys_are_the_published_set() -> None:
    assert DEFAULT_REDACT_KEYS == (
        "api_key", "api-key", "apikey", "authorization", "bearer", "password", "passwd", "secret",
        "secret_key", "access_key", "private_key", "access_token", "refresh_token", "auth_token", "id_token",
    )  # fmt: skip


def test_keys_match_case_insensitive_substrings_at_any_depth() -> None:
    data = {
        "OPENAI_API_KEY": "sk-1",
        "db_password": "pw",
        "Authorization": "Basic xyz",
        "nested": [{"X-Api-Key": "k", "ok": "visible"}],
        "total_tokens": 15,
    }
    out = sanitize(data)
    assert out == {
        "OPENAI_API_KEY": REDACTED,
        "db_password": REDACTED,
        "Authorization": REDACTED,
        "nested": [{"X-Api-Key": REDACTED, "ok": "visible"}],
        "total_tokens": 15,
    }


def test_custom_and_disabled_key_lists() -> None:
    assert sanitize({"pin": "1234", "api_key": "k"}, redact_keys=["PIN"]) == {"pin": REDACTED, "api_key": "k"}
    assert sanitize({"password": "pw"}, redact_keys=()) == {"password": "pw"}
    assert resolve_redact("Token") == ("token",)
    assert resolve_redact(None) == DEFAULT_REDACT_KEYS


def test_values_that_look_like_secrets_are_scrubbed() -> None:
    text = (
        "dsn=postgresql://admin:s3cr%40t@db:5432/app mysql://root:pw@127.0.0.1/x "
        'Authorization: Bearer abc.DEF-123 and password=hunter2, {"api_key": "sk-9"} url=https://host/path'
    )
    out = scrub_text(text)
    for secret in ("s3cr%40t", ":pw@", "abc.DEF-123", "hunter2", "sk-9"):
        assert secret not in out
    assert "postgresql://admin:***@db:5432/app" in out
    assert "mysql://root:***@127.0.0.1/x" in out
    assert "https://host/path" in out  # no credentials, untouched
    # DSN and bearer scrubbing stay on when key-based redaction is disabled.
    assert scrub_text("Bearer tok123 sqlite://u:p@h", ()) == "Bearer *** sqlite://u:***@h"
    assert scrub_text("password=x", ()) == "password=x"


def test_truncation_marks_what_was_cut() -> None:
    assert sanitize("x" * 30, max_field_len=10) == "x" * 10 + "…(+20)"
    assert sanitize("short", max_field_len=10) == "short"
    assert sanitize("y" * 5000, max_field_len=None) == "y" * 5000


def test_secret_straddling_the_cut_is_scrubbed_before_cutting() -> None:
    text = "a" * 8 + "password=topsecretvalue"
    out = sanitize(text, max_field_len=12)
    assert "tops" not in out and out.startswith("a" * 8 + "pass")


def test_lists_are_capped_and_odd_values_become_json() -> None:
    class Color(Enum):
        RED = "red"

    @dataclass
    class Thing:
        name: str
        password: str

    out = sanitize(
        {"items": list(range(60)), "set": {1}, "blob": b"abc", "color": Color.RED, "thing": Thing("n", "pw"),
         "obj": object(), 3: "int key"},
        max_items=50,
    )  # fmt: skip
    assert out["items"] == [*range(50), "…(+10 items)"]
    assert out["set"] == [1] and out["blob"] == "<3 bytes>" and out["color"] == "red"
    assert out["thing"] == {"name": "n", "password": REDACTED}
    assert out["obj"].startswith("<object object") and out["3"] == "int key"
    json.dumps(out)


def test_tool_call_delta_fragments_are_replaced_by_their_length() -> None:
    event = AgentEvent(
        AgentEventType.TOOL_CALL_DELTA,
        {"index": 0, "name": "lookup", "arguments_delta": '{"api_key": "sk-li'},
    )
    assert sanitize_payload(event)["arguments_delta"] == "<18 chars>"
    other = AgentEvent(AgentEventType.SYSTEM_LOG, {"message": "password=pw1"})
    assert sanitize_payload(other) == {"message": "password=***"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None)
@given(
    value=json_values, secret=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=20)
)
def test_secret_values_under_secret_keys_never_survive(value: object, secret: str) -> None:
    data = {"payload": value, "creds": {"Api_Key": secret, "list": [{"password": secret}]}}
    out = sanitize(data, max_field_len=40)
    dumped = json.dumps(out, ensure_ascii=False)
    assert secret not in json.dumps(out["creds"])
    assert out["payload"] == sanitize(value, max_field_len=40)
    assert isinstance(dumped, str)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300), limit=st.integers(min_value=0, max_value=100))
def test_truncated_strings_are_bounded(text: str, limit: int) -> None:
    out = sanitize(text, redact_keys=(), max_field_len=limit)
    if len(text) > limit:
        marker = f"…(+{len(text) - limit})"
        assert out.endswith(marker) and len(out) - len(marker) <= limit
    else:
        assert out == scrub_text(text, ())
