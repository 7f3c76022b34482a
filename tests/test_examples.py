"""Every example in examples/ runs offline, exits cleanly and leaves no files behind (SPEC §7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))
NUMBERED = [p for p in EXAMPLES if re.match(r"\d\d_\w+\.py$", p.name)]
#: Examples that need running services, each run by its own test (which starts what it needs).
SERVICE_EXAMPLES = {
    "celery_app": "tests/contrib/test_contrib_celery_example.py",
    "celery_workflow": "tests/contrib/test_contrib_celery_example.py",
}
OFFLINE = [p for p in EXAMPLES if p.stem not in SERVICE_EXAMPLES]

#: A line each numbered example must print: what it shows, as it shows it (examples also assert).
EXPECTED = {
    "00_hello": "completed: Hello! How can I help?",
    "01_quickstart": "history the model saw: ['user', 'assistant', 'tool', 'assistant', 'user']",
    "02_read_history": "sends=2 rounds=3 llm_calls=3 tools=1",
    "03_sync_api": "completed Hello from a blocking call.",
    "04_streaming": "done: completed — It is 21°C and clear in Lisbon.",
    "05_system_prompts": "sections: ['identity', 'house_rules', 'security', 'tool_catalog', 'model']",
    "06_builtin_tools": "final: completed All done.",
    "07_runtime_env": "bob/notes.txt: note from bob",
    "08_apply_patch": "edited greet.py (1 hunk applied)",
    "09_skills": 'load_skill returned: <skill name="release-notes"',
    "10_pass_turn": "passed=True reason='inbox empty'",
    "11_hooks_and_events": "'db_password=***'",
    "12_event_sinks": "jsonl: the DSN password is stored as app:***@db.internal",
    "13_metrics_and_tracing": "tool calls: {(('success', 'false'), ('tool', 'flaky')): 1}",
    "14_structured_output": "output: {'total': 120.5, 'currency': 'EUR'} dict",
    "15_crash_recovery": "resume: completed Charged 5.",
    "16_human_input": "answered: completed Using the visa.",
    "17_timers": "assistant: (model saw: summarise the day)",
    "18_capabilities": "probed:   vision=False tools=True",
    "19_vision": "refused before any request (llm.capability): requests sent = 0",
    "20_context_combinations": "notes captured by the fold: ['the user works on the billing service']",
    "21_context_custom_fold": "compactions: 3",
    "22_subagents": "#1 [task·done]",
    "23_workflow_research": "journal: completed",
    "24_workflow_resume_after_crash": "replayed from the journal: ['researcher:0', 'researcher:1', 'researcher:2']",
    "25_workflow_subprocess_sandbox": "with a broken sandbox: failed",
    "26_custom_database_adapter": "driver: AiosqliteDatabase dialect: sqlite",
    "27_provider_openai": "completed: It is 21C and sunny in Paris.",
    "28_provider_anthropic": "structured: {'currency': 'USD', 'amount': 110.0}",
    "29_mcp_tools": "tool units_km_to_miles: 42.195 km = 26.22 miles",
    "30_published_program": "board: ['#1 facts collected']",
    "31_chatbot": "the note reached the model after the restart: True",
    "32_steer": "user (steer)   Just the capital.",
    "33_steer_tools": "tool (crawl)   <interrupted: steered>",
    "34_jobs": "the worker's send ended 'cancelled'; jobs left: []",
}


@pytest.mark.parametrize("path", OFFLINE, ids=[p.stem for p in OFFLINE])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POWER_LOOP_PROVIDER", "POWER_LOOP_BASE_URL"))
    }
    cwd, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmpdir.mkdir()
    env["TMPDIR"] = str(tmpdir)  # where tempfile puts its files: it must be empty afterwards
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip(), "examples print what they show"
    expected = EXPECTED.get(path.stem)
    assert expected is None or expected in proc.stdout, f"{expected!r} not printed:\n{proc.stdout}"
    left = sorted(p.name for p in [*cwd.iterdir(), *tmpdir.iterdir()])
    assert not left, f"the example left files behind: {left}"


def test_every_service_example_has_its_own_test() -> None:
    root = EXAMPLES[0].parents[1]
    for stem, test in SERVICE_EXAMPLES.items():
        assert (root / "examples" / f"{stem}.py").exists() and (root / test).exists()
        assert f"examples/{stem}.py" in (root / test).read_text(encoding="utf-8").replace('" / "', "/")


def test_the_learning_path_is_numbered_without_gaps() -> None:
    numbers = [int(p.name[:2]) for p in NUMBERED]
    assert numbers == list(range(len(NUMBERED))) and len(NUMBERED) >= 30
    assert {p.stem for p in NUMBERED} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_short_and_says_how_to_run_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 80, "an example teaches one thing in under 80 lines"
    assert text.startswith('"""') and f"python examples/{path.name}" in text.split('"""')[1]


def test_the_index_lists_every_example() -> None:
    index = (EXAMPLES[0].parent / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\[(\w+\.py)\]\(\1\)", index))
    assert listed == {p.name for p in EXAMPLES}
