"""JSONL sink: lines, redaction, rotation, replay, filtering, detaching, thread safety."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from obs_scenario import API_KEY, assert_no_secrets, run_scenario

from power_loop import AgentEventBus
from power_loop.contrib.jsonl_sink import JsonlSink, attach_jsonl_sink, replay
from power_loop.errors import ConfigError, PowerLoopError
from power_loop.events import AgentEvent, AgentEventType


async def test_every_event_is_one_sanitised_json_line_and_replays_identically(tmp_path: Path) -> None:
    bus = AgentEventBus()
    seen: list[AgentEvent] = []
    bus.subscribe(None, seen.append)
    path = tmp_path / "events.jsonl"
    sink = attach_jsonl_sink(bus, path)
    result = await run_scenario(bus, tmp_path / "x.db")
    sink.close()
    assert result.status == "completed"

    text = path.read_text(encoding="utf-8")
    assert_no_secrets(text)
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(seen) == sink.lines_written
    assert [line["seq"] for line in lines] == [e.seq for e in seen]
    assert {"session_started", "tool_call_failed", "tool_call_completed", "session_ended"} <= {
        line["type"] for line in lines
    }
    started = next(line for line in lines if line["type"] == "tool_call_started")
    assert started["payload"]["tool_input"]["api_key"] == "***"

    replayed = list(replay(path))
    assert [(e.type, e.seq, e.ts, e.mono, e.session_id, e.round_index) for e in replayed] == [
        (e.type, e.seq, e.ts, e.mono, e.session_id, e.round_index) for e in seen
    ]
    # Payloads without secrets come back unchanged.
    by_seq = {e.seq: e for e in replayed}
    for original in seen:
        if original.type in (AgentEventType.ROUND_COMPLETED, AgentEventType.USAGE_UPDATED):
            assert by_seq[original.seq].payload == original.payload


def test_rotation_keeps_backup_count_files_and_replay_reads_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "rot.jsonl"
    sink = JsonlSink(path, max_bytes=600, backup_count=3)
    events = [
        AgentEvent("system_log", {"message": f"line {i:03d} " + "x" * 60}, session_id="s") for i in range(60)
    ]
    for event in events:
        sink.handle(event)
    sink.close()

    backups = sorted(p.name for p in tmp_path.iterdir() if p.name != "rot.jsonl")
    assert backups == ["rot.jsonl.1", "rot.jsonl.2", "rot.jsonl.3"]
    for file in [path, *(tmp_path / b for b in backups)]:
        assert 0 < file.stat().st_size <= 600
    replayed = list(replay(path))
    seqs = [e.seq for e in replayed]
    assert seqs == sorted(seqs) and seqs[-1] == events[-1].seq
    assert len(replayed) < len(events)  # the oldest lines were rotated away
    assert [e.payload["message"] for e in replayed] == [
        e.payload["message"] for e in events if e.seq >= seqs[0]
    ]


def test_zero_backups_truncates_and_zero_max_bytes_never_rotates(tmp_path: Path) -> None:
    one = JsonlSink(tmp_path / "a.jsonl", max_bytes=200, backup_count=0)
    for i in range(20):
        one.write_line(json.dumps({"type": "system_log", "seq": i + 1, "payload": {"n": i}}))
    one.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]
    assert (tmp_path / "a.jsonl").stat().st_size <= 200

    never = JsonlSink(tmp_path / "b.jsonl", max_bytes=0)
    for _ in range(50):
        never.write_line('{"type": "system_log"}')
    never.close()
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 50
    assert not (tmp_path / "b.jsonl.1").exists()


def test_replay_skips_bad_lines_and_unknown_types(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = AgentEvent("user_notification", {"message": "hi"}, session_id="s1")
    path.write_text(
        "\n".join(
            [
                "not json",
                json.dumps(good.to_dict()),
                "[1, 2, 3]",
                json.dumps({"type": "no_such_event", "seq": 5}),
                json.dumps({"payload": {}}),
                '{"type": "system_log", "seq": "NaN-ish"}',
                "",
            ]
        )
        + "\n\xff\xfe garbage",
        encoding="utf-8",
    )
    (tmp_path / "mixed.jsonl.notanumber").write_text(json.dumps(good.to_dict()))
    replayed = list(replay(path))
    assert len(replayed) == 1
    assert replayed[0] == good and (replayed[0].seq, replayed[0].ts) == (good.seq, good.ts)
    assert list(replay(tmp_path / "missing.jsonl")) == []


async def test_event_filter_and_close_detaches(tmp_path: Path) -> None:
    bus = AgentEventBus()
    path = tmp_path / "tools.jsonl"
    sink = attach_jsonl_sink(bus, path, events=["tool_call_completed", AgentEventType.TOOL_CALL_FAILED])
    assert bus.wants("tool_call_completed") and not bus.wants("stream_delta")
    await run_scenario(bus, tmp_path / "x.db")
    sink.close()
    sink.close()  # idempotent
    assert sink.closed and not bus.wants("tool_call_completed")
    types = [json.loads(line)["type"] for line in path.read_text().splitlines()]
    assert types == ["tool_call_completed", "tool_call_failed", "tool_call_completed"]
    with pytest.raises(PowerLoopError):
        sink.write_line("{}")


def test_field_cap_and_custom_redact_keys(tmp_path: Path) -> None:
    bus = AgentEventBus()
    path = tmp_path / "cap.jsonl"
    with attach_jsonl_sink(bus, path, max_field_len=10, redact_keys=["pin"]) as sink:
        bus.publish(AgentEvent("system_log", {"message": "m" * 25, "pin": "1234", "api_key": API_KEY}))
    assert sink.closed
    payload = json.loads(path.read_text())["payload"]
    # Key matching follows redact_keys; an ``sk-…`` key is recognised by its shape whatever the keys.
    assert payload == {"message": "m" * 10 + "…(+15)", "pin": "***", "api_key": "***…(+10)"}


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        JsonlSink(tmp_path / "x.jsonl", max_bytes=-1)
    with pytest.raises(ConfigError):
        attach_jsonl_sink(AgentEventBus(), tmp_path / "y.jsonl", events=["nope"])


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "threads.jsonl"
    sink = JsonlSink(path, max_bytes=20_000, backup_count=50)

    def writer(n: int) -> None:
        for i in range(200):
            sink.handle(AgentEvent("system_log", {"message": f"{n}-{i}-" + "z" * 40}, session_id=str(n)))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    replayed = list(replay(path))
    assert len(replayed) == 800 == sink.lines_written
    assert {e.payload["message"].split("-")[0] for e in replayed} == {"0", "1", "2", "3"}
