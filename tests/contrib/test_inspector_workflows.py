"""The inspector's workflow views over HTTP: a session's runs and one run's tree, on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inspector_wf_scenario import LONG_TEXT, WF_SCRIPT, WorkflowScenario, build_workflow
from test_inspector_api import get

from power_loop.contrib.inspector import Inspector, _workflows
from power_loop.contrib.inspector._workflows import PREVIEW_CHARS
from power_loop.store import open_store


@pytest.fixture
async def wf(loop_dsn_and_prefix: tuple[str, str]) -> WorkflowScenario:
    dsn, prefix = loop_dsn_and_prefix
    return await build_workflow(WorkflowScenario(dsn, prefix))


def _leaves(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {node["key"]: node} if node["type"] == "agent" else {}
    for child in node.get("children", []):
        found.update(_leaves(child))
    return found


async def test_run_tree_has_every_step_status_and_child_session(wf: WorkflowScenario) -> None:
    with Inspector(wf.dsn, port=0, prefix=wf.prefix) as insp:
        _, detail = get(insp.url + f"api/sessions/{wf.parent}")
        (run,) = detail["workflow_runs"]
        assert run["run_id"] == wf.run_id and run["workflow"] == "review" and run["status"] == "completed"
        driver = run["driver_session_id"]
        assert run["owner_session_id"] == wf.parent and driver
        # the driver session's page lists the run it drives too
        _, drv = get(insp.url + f"api/sessions/{driver}")
        assert [r["run_id"] for r in drv["workflow_runs"]] == [wf.run_id]

        status, page = get(insp.url + f"api/sessions/{wf.parent}/workflows/{wf.run_id}")
        assert status == 200 and page["run"]["status"] == "completed" and not page["more_steps"]
        tree = page["tree"]
        assert tree["type"] == "sequence" and tree["status"] == "failed"  # the critic failed
        foreach, parallel, _decide, branch, loop = tree["children"]
        assert foreach["type"] == "foreach" and [c["label"] for c in foreach["children"]] == [0, 1]
        assert [c["item"] for c in foreach["children"]] == ["solar", "wind"]
        assert foreach["status"] == "completed" and parallel["status"] == "failed"
        assert [c["label"] for c in branch["children"]] == ["go", "stop"]
        assert branch["status"] == "completed"
        assert loop["type"] == "loop" and [c["label"] for c in loop["children"]] == [1, 2]
        assert loop["children"][0]["type"] == "iteration" and loop["status"] == "completed"
        leaves = _leaves(tree)
        statuses = {k: n["status"] for k, n in leaves.items()}
        assert statuses == {
            "researcher:0": "completed",
            "researcher:1": "completed",
            "writer": "completed",
            "critic": "failed",
            "decide": "completed",
            "editor": "completed",
            "stopper": "skipped",  # the untaken case never ran
            "polisher:1": "completed",
            "polisher:2": "completed",
        }
        assert leaves["researcher:1"]["step"]["text"] == "notes on wind"
        assert leaves["researcher:1"]["step"]["session_id"] == wf.leaves["researcher:1"]
        assert leaves["researcher:1"]["step"]["usage"]["total_tokens"] == 15
        assert leaves["writer"]["step"]["text"] == WF_SCRIPT  # JSON text; the page renders it as text
        assert "critic broke" in (leaves["critic"]["step"]["error"] or "")
        editor = leaves["editor"]["step"]
        assert editor["truncated"] and len(editor["text"]) == PREVIEW_CHARS
        assert leaves["stopper"]["step"] is None
        assert leaves["polisher:2"]["step"]["text"] == "done"

        _, full = get(insp.url + f"api/sessions/{wf.parent}/workflows/{wf.run_id}/steps/editor")
        assert full["status"] == "completed" and full["body"]["text"] == LONG_TEXT

        # a leaf's session page is an ordinary session page
        status, leaf = get(insp.url + f"api/sessions/{wf.leaves['writer']}")
        assert status == 200 and leaf["session"]["parent_session_id"] == driver
        assert leaf["workflow_step"] == {"owner_session_id": wf.parent, "run_id": wf.run_id, "key": "writer"}
        assert detail["workflow_step"] is None and drv["workflow_step"] is None

        # the session list nests the run's driver under its owner, and every leaf under the driver
        _, listing = get(insp.url + "api/sessions")
        (root,) = [s for s in listing["sessions"] if s["session_id"] == wf.parent]
        (driving,) = root["children"]
        assert driving["session_id"] == driver
        assert {c["session_id"] for c in driving["children"]} == set(wf.leaves.values())


async def test_unknown_runs_and_steps_are_404(wf: WorkflowScenario) -> None:
    with Inspector(wf.dsn, port=0, prefix=wf.prefix) as insp:
        status, body = get(insp.url + f"api/sessions/{wf.parent}/workflows/nope")
        assert status == 404 and body["code"] == "session.not_found"
        status, _ = get(insp.url + f"api/sessions/{wf.parent}/workflows/{wf.run_id}/steps/nope")
        assert status == 404
        status, _ = get(insp.url + f"api/sessions/{wf.parent}/workflows/{wf.run_id}/x/y")
        assert status == 404


async def test_run_reads_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_workflows, "MAX_STEPS", 3)
    monkeypatch.setattr(_workflows, "MAX_RUNS", 2)
    dsn = str(tmp_path / "wf.db")
    store = await open_store(dsn)
    owner = await store.create_session()
    leaf = {"type": "agent", "id": "w", "spec": {"name": "w"}}
    spec = {"name": "fan", "root": {"type": "foreach", "as": "x", "items": list(range(6)), "body": leaf}}
    for run_id in ("r1", "r2", "r3"):
        await store.put_workflow_record(owner, run_id, "@run", status="running", body={"spec": spec})
    for i in range(6):
        await store.put_workflow_record(owner, "r1", f"w:{i}", status="completed", body={"text": f"t{i}"})
    await store.close()
    with Inspector(dsn, port=0) as insp:
        _, detail = get(insp.url + f"api/sessions/{owner}")
        assert len(detail["workflow_runs"]) == 2
        _, page = get(insp.url + f"api/sessions/{owner}/workflows/r1")
        assert page["more_steps"] and page["steps"] == 3
        items = page["tree"]["children"]
        assert [c["status"] for c in items] == ["completed"] * 3 + ["pending"] * 3  # still running


async def test_items_from_values_come_from_the_referenced_step(tmp_path: Path) -> None:
    dsn = str(tmp_path / "wf.db")
    store = await open_store(dsn)
    owner = await store.create_session()
    w = {"type": "agent", "id": "w", "spec": {"name": "w"}}
    fan = {"type": "foreach", "as": "t", "items_from": "planner.topics", "body": w}
    root = {"type": "sequence", "steps": [{"type": "agent", "id": "planner", "spec": {"name": "p"}}, fan]}
    await store.put_workflow_record(owner, "r", "@run", status="failed", body={"spec": {"root": root}})
    plan = {"status": "completed", "payload": {"topics": ["<i>a</i>", "b"]}}
    await store.put_workflow_record(owner, "r", "planner", status="completed", body=plan)
    await store.put_workflow_record(owner, "r", "w:0", status="failed", body={"error": "no"})
    await store.put_workflow_record(owner, "r2", "@run", status="running", body={"spec": {"root": root}})
    await store.close()
    with Inspector(dsn, port=0) as insp:
        _, page = get(insp.url + f"api/sessions/{owner}/workflows/r")
        items = page["tree"]["children"][1]["children"]
        assert [(c["item"], c["status"]) for c in items] == [("<i>a</i>", "failed"), ("b", "skipped")]
        assert page["tree"]["status"] == "failed"
        _, live = get(insp.url + f"api/sessions/{owner}/workflows/r2")  # nothing started yet
        planner, fan = live["tree"]["children"]
        assert (planner["status"], fan["status"], fan["children"]) == ("pending", "pending", [])
