"""The workflow run page in chromium: from a session to its run, the tree's statuses, inert text, live.

Shares the browser fixtures of test_inspector_browser.py (Debian's chromium via Playwright). With
``POWER_LOOP_INSPECTOR_SHOTS=<dir>`` the SQLite run writes ``inspector-workflow.png``.
"""

from __future__ import annotations

from typing import Any

import pytest
from inspector_wf_scenario import LONG_TEXT, WF_SCRIPT, WorkflowScenario, build_workflow
from test_inspector_browser import _shots, browser, page  # noqa: F401  (fixtures)

from power_loop.contrib.inspector import Inspector
from power_loop.store import open_store

pytestmark = pytest.mark.browser


@pytest.fixture
async def wf(loop_dsn_and_prefix: tuple[str, str]) -> WorkflowScenario:
    dsn, prefix = loop_dsn_and_prefix
    return await build_workflow(WorkflowScenario(dsn, prefix))


async def test_session_to_run_tree_with_statuses(page: Any, wf: WorkflowScenario) -> None:  # noqa: F811
    with Inspector(wf.dsn, port=0, prefix=wf.prefix) as insp:
        await page.goto(insp.url + "#/s/" + wf.parent)
        await page.wait_for_selector(f"body[data-ready='#/s/{wf.parent}'] #workflow-runs a.run-link")
        assert "review" in await page.locator("#workflow-runs").inner_text()
        await page.click("#workflow-runs a.run-link")
        tree = page.locator("#wf-tree")
        await page.wait_for_selector("#wf-tree li[data-key='editor']")
        status = {
            key: await tree.locator(f"li[data-key='{key}']").get_attribute("data-status")
            for key in (
                "researcher:0",
                "researcher:1",
                "writer",
                "critic",
                "decide",
                "editor",
                "stopper",
                "polisher:2",
            )
        }
        assert status == {
            "researcher:0": "completed",
            "researcher:1": "completed",
            "writer": "completed",
            "critic": "failed",
            "decide": "completed",
            "editor": "completed",
            "stopper": "skipped",
            "polisher:2": "completed",
        }
        assert await tree.locator("li[data-type='iteration']").count() == 2
        assert await tree.locator("li[data-type='item']").count() == 2
        assert "item 1: wind" in await tree.locator("li[data-type='item']").nth(1).inner_text()
        assert await tree.locator("li[data-type='case']").count() == 2
        assert "critic broke" in await tree.locator("li[data-key='critic'] .step-error").inner_text()
        # the step's <script> is shown as text and never runs
        assert await tree.locator("li[data-key='writer'] .step-text").inner_text() == WF_SCRIPT
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("#wf-tree script, #wf-tree .step-text b").count() == 0
        shots = _shots(wf)  # type: ignore[arg-type]
        if shots:
            await page.screenshot(path=str(shots / "inspector-workflow.png"), full_page=True)
        # a long text is clipped; "show all" fetches the step
        editor = tree.locator("li[data-key='editor']")
        await editor.locator(".show-all").click()
        await editor.locator(".step-text", has_text="END").wait_for()
        assert await editor.locator(".step-text").inner_text() == LONG_TEXT
        # each step links to its child session's page
        await tree.locator(f"li[data-key='writer'] a[href='#/s/{wf.leaves['writer']}']").click()
        await page.wait_for_selector(f"body[data-ready='#/s/{wf.leaves['writer']}'] #timeline [data-seq]")
        # and back: a leaf's page names its workflow step
        await page.click("#workflow-step a")
        await page.wait_for_selector(f"body[data-ready='#/w/{wf.parent}/{wf.run_id}'] #wf-tree")


async def test_a_running_run_updates_live(page: Any, loop_dsn_and_prefix: tuple[str, str]) -> None:  # noqa: F811
    dsn, prefix = loop_dsn_and_prefix
    store = await open_store(dsn, table_prefix=prefix)
    try:
        owner = await store.create_session()
        spec = {"name": "live", "root": {"type": "agent", "id": "solo", "spec": {"name": "solo"}}}
        run = {"workflow": "live", "spec": spec, "driver_sid": owner}
        await store.put_workflow_record(owner, "r1", "@run", status="running", body=run)
        with Inspector(dsn, port=0, prefix=prefix) as insp:
            await page.goto(insp.url + f"#/w/{owner}/r1")
            await page.locator("#wf-tree li[data-key='solo'][data-status='pending']").wait_for()
            step = {"node_id": "solo", "status": "running", "session_id": owner, "attempts": 1}
            await store.put_workflow_record(owner, "r1", "solo", status="running", body=step)
            await page.locator("#wf-tree li[data-key='solo'][data-status='running']").wait_for()
            done = {**step, "status": "completed", "text": "all done", "usage": {"total_tokens": 7}}
            await store.put_workflow_record(owner, "r1", "solo", status="completed", body=done)
            await store.put_workflow_record(owner, "r1", "@run", status="completed", body=run)
            await page.locator("#wf-tree li[data-key='solo'][data-status='completed']").wait_for()
            assert "all done" in await page.locator("#wf-tree").inner_text()
    finally:
        await store.close()
