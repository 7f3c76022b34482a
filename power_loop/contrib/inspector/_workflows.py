"""Workflow runs in the inspector: a session's runs and one run's node tree, from the journal.

A run's journal (``workflow_journal``) holds one ``@run`` row (spec, driver session, status, result)
and one row per leaf step keyed ``<node id>[:<item or iteration>...]``. The tree is the run's spec
with each leaf's row hung on it; a leaf without a row is ``pending`` while the run goes on and
``skipped`` once it ended (it never started). Every read has a ``LIMIT``; long text is clipped here and
fetched whole for one step on "show all".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ...errors import CorruptRowError, SessionNotFoundError

__all__ = ["MAX_RUNS", "MAX_STEPS", "PREVIEW_CHARS", "WorkflowQueries"]

MAX_RUNS = 50  # runs listed on a session page (newest first)
MAX_STEPS = 2000  # step rows read for one run's tree
PREVIEW_CHARS = 300  # text / payload shown per step before "show all"
_MAX_ITEMS = 500  # foreach items / loop iterations drawn per node
_RUN = "@run"
_COLS = "session_id, run_id, step_key, status, body_json, created_at, updated_at"


def _body(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    raw = row.get("body_json")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise CorruptRowError(f"corrupt JSON at workflow_journal[{where}]: {exc}") from exc
    return body if isinstance(body, dict) else {}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _preview(value: Any) -> tuple[str | None, bool]:
    """``value`` as text (JSON unless a string), cut to ``PREVIEW_CHARS``; the flag says if it was cut."""
    if value is None or value == "":
        return None, False
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return (text[:PREVIEW_CHARS], True) if len(text) > PREVIEW_CHARS else (text, False)


def _run_json(row: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    error, _ = _preview(body.get("error"))
    result = body.get("result") if isinstance(body.get("result"), dict) else {}
    return {
        "owner_session_id": row["session_id"],
        "run_id": row["run_id"],
        "workflow": body.get("workflow"),
        "status": row["status"],
        "driver_session_id": body.get("driver_sid"),
        "created_at": body.get("created_at_ms") or row["created_at"],
        "finished_at": body.get("finished_at_ms"),
        "updated_at": row["updated_at"],
        "attempts": body.get("attempts"),
        "detached": bool(body.get("detached")),
        "error": error,
        "usage": dict(result.get("usage") or {}) if isinstance(result, dict) else {},
    }


def _step_json(key: str, row: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    text, text_cut = _preview(body.get("text"))
    payload, payload_cut = _preview(body.get("payload"))
    error, error_cut = _preview(body.get("error"))
    return {
        "key": key,
        "status": row["status"],
        "session_id": body.get("session_id"),
        "attempts": body.get("attempts"),
        "usage": dict(body.get("usage") or {}),
        "text": text,
        "payload": payload,
        "error": error,
        "truncated": text_cut or payload_cut or error_cut,
        "updated_at": row["updated_at"],
    }


def _fold_status(statuses: Sequence[str]) -> str:
    """A composite node's status from its children's."""
    seen = set(statuses)
    for status in ("failed", "cancelled", "running"):
        if status in seen:
            return status
    if not seen or seen == {"skipped"}:
        return "skipped"
    if seen == {"pending"}:
        return "pending"
    if seen <= {"completed", "skipped"}:
        return "completed"
    return "running" if "pending" in seen else "completed"


class _TreeBuilder:
    """The spec JSON walked with the step rows hung on its leaves."""

    def __init__(
        self,
        root: Mapping[str, Any],
        steps: Mapping[str, dict[str, Any]],
        bodies: Mapping[str, Mapping[str, Any]],
        run_live: bool,
    ) -> None:
        self.steps = steps
        self.bodies = bodies  # each step's full journal body, for foreach `items_from` values
        self.run_live = run_live
        self.depths = _depths(root, 0, {})
        # the node id of every step key, split once: "researcher:2" -> ("researcher", ("2",))
        self.keys = [(k.split(":")[0], tuple(k.split(":")[1:])) for k in steps]

    def node(self, spec: Mapping[str, Any], scope: tuple[str, ...]) -> dict[str, Any]:
        kind = str(spec.get("type") or "?")
        out: dict[str, Any] = {"type": kind, "id": spec.get("id")}
        if kind == "agent":
            return self._leaf(spec, scope, out)
        children: list[dict[str, Any]]
        if kind in ("sequence", "parallel"):
            parts = spec.get("steps") if kind == "sequence" else spec.get("branches")
            children = [self.node(c, scope) for c in parts or [] if isinstance(c, Mapping)]
        elif kind in ("foreach", "loop"):
            children = self._scoped(spec, scope)
        elif kind == "branch":
            out["on"] = spec.get("on")
            cases = dict(spec.get("cases") or {})
            if isinstance(spec.get("default"), Mapping):
                cases["(default)"] = spec["default"]
            children = [self._wrap("case", name, self.node(case, scope)) for name, case in cases.items()]
            # untaken cases do not decide the branch's status
            taken = [c for c in children if c["status"] not in ("skipped", "pending")]
            out.update(children=children, status=_fold_status([c["status"] for c in taken or children]))
            return out
        else:
            children = []
        # a foreach / loop with no item started yet
        empty = "pending" if self.run_live else "skipped"
        status = _fold_status([c["status"] for c in children]) if children else empty
        out.update(children=children, status=status)
        return out

    def _leaf(self, spec: Mapping[str, Any], scope: tuple[str, ...], out: dict[str, Any]) -> dict[str, Any]:
        key = str(spec.get("id")) + "".join(f":{s}" for s in scope)
        step = self.steps.get(key)
        agent = _map(spec.get("spec"))
        out.update(key=key, agent=agent.get("name"), step=step)
        out["status"] = step["status"] if step else ("pending" if self.run_live else "skipped")
        return out

    @staticmethod
    def _wrap(kind: str, label: Any, child: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"type": kind, "label": label, "children": [child], "status": child["status"], **extra}

    def _scoped(self, spec: Mapping[str, Any], scope: tuple[str, ...]) -> list[dict[str, Any]]:
        """One child per foreach item (0-based) or loop iteration (1-based) seen in the journal."""
        body = _map(spec.get("body"))
        ids = {str(n.get("id")) for n in _walk(body) if n.get("type") == "agent"}
        depth = len(scope)
        seen = {
            rest[depth]
            for node_id, rest in self.keys
            if node_id in ids and len(rest) > depth and rest[:depth] == scope
        }
        items = spec.get("items") if isinstance(spec.get("items"), list) else self._items_from(spec, scope)
        indices = {int(s) for s in seen if s.isdigit()}
        if items is not None:
            indices |= set(range(len(items)))
        out = []
        for i in sorted(indices)[:_MAX_ITEMS]:
            if spec.get("type") == "foreach":
                item, _ = _preview(items[i] if items is not None and i < len(items) else None)
                out.append(self._wrap("item", i, self.node(body, (*scope, str(i))), item=item))
            else:
                out.append(self._wrap("iteration", i, self.node(body, (*scope, str(i)))))
        return out

    def _items_from(self, spec: Mapping[str, Any], scope: tuple[str, ...]) -> list[Any] | None:
        """A foreach's ``items_from`` list, read from the referenced step's row as the engine reads it."""
        node_id, _, field = str(spec.get("items_from") or "").partition(".")
        depth = self.depths.get(node_id)
        if depth is None or depth > len(scope):
            return None
        body = self.bodies.get(node_id + "".join(f":{s}" for s in scope[:depth]))
        if body is None or body.get("status") != "completed":
            return None
        value = _map(body.get("payload")).get(field) if field else body.get("text")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [line.strip() for line in value.splitlines() if line.strip()]
        return value if isinstance(value, list) else None


def _depths(spec: Mapping[str, Any], depth: int, out: dict[str, int]) -> dict[str, int]:
    """How many foreach/loop bodies enclose each node id (the length of its step-key suffix)."""
    if spec.get("id") is not None:
        out[str(spec["id"])] = depth
    inner = depth + 1 if spec.get("type") in ("foreach", "loop") else depth
    for child in _children(spec):
        _depths(child, inner, out)
    return out


def _children(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nested: list[Any] = [*(spec.get("steps") or []), *(spec.get("branches") or [])]
    nested += [spec.get("body"), *dict(spec.get("cases") or {}).values(), spec.get("default")]
    return [c for c in nested if isinstance(c, Mapping)]


def _walk(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``spec`` and every node below it."""
    return [spec, *(n for c in _children(spec) for n in _walk(c))]


class WorkflowQueries:
    """Read-only, bounded reads of the ``workflow_journal`` table."""

    def __init__(
        self, prefix: str, rows: Callable[[str, Sequence[Any]], Awaitable[list[dict[str, Any]]]]
    ) -> None:
        self._t = f"{prefix}workflow_journal"
        self._sessions = f"{prefix}sessions"
        self._rows = rows

    async def runs_for(
        self, session_id: str, metadata: Mapping[str, Any] | None, parent: str | None
    ) -> list[dict[str, Any]]:
        """Runs this session owns (newest first, at most ``MAX_RUNS``), plus the run it drives if any."""
        rows = await self._rows(
            f"SELECT {_COLS} FROM {self._t} WHERE session_id = ? AND step_key = ? "
            "ORDER BY created_at DESC, run_id DESC LIMIT ?",
            [session_id, _RUN, MAX_RUNS],
        )
        meta = metadata or {}
        run_id = meta.get("workflow_run_id")
        if meta.get("kind") == "wf_driver" and isinstance(run_id, str):
            owner = parent or session_id
            if not any(r["run_id"] == run_id and r["session_id"] == owner for r in rows):
                rows += await self._rows(
                    f"SELECT {_COLS} FROM {self._t} WHERE session_id = ? AND run_id = ? AND step_key = ? LIMIT 1",
                    [owner, run_id, _RUN],
                )
        return [_run_json(r, _body(r, f"{r['session_id']}/{r['run_id']}")) for r in rows]

    async def step_of(self, metadata: Mapping[str, Any] | None, parent: str | None) -> dict[str, Any] | None:
        """For a workflow leaf's session: the run and step it ran (``owner_session_id``, ``run_id``, ``key``).

        A leaf's metadata names its run and idempotency key ``<run_id>:<step key>``; its parent is the
        run's driver, whose own parent (if any) owns the journal.
        """
        meta = metadata or {}
        run_id, idem = meta.get("workflow_run_id"), meta.get("idempotency_key")
        if not (
            isinstance(run_id, str) and isinstance(idem, str) and idem.startswith(run_id + ":") and parent
        ):
            return None
        rows = await self._rows(
            f"SELECT parent_session_id FROM {self._sessions} WHERE session_id = ? LIMIT 1", [parent]
        )
        owner = (rows[0]["parent_session_id"] if rows else None) or parent
        return {"owner_session_id": owner, "run_id": run_id, "key": idem[len(run_id) + 1 :]}

    async def _head(self, owner: str, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        rows = await self._rows(
            f"SELECT {_COLS} FROM {self._t} WHERE session_id = ? AND run_id = ? AND step_key = ? LIMIT 1",
            [owner, run_id, _RUN],
        )
        if not rows:
            raise SessionNotFoundError(f"no workflow run {run_id!r} under session {owner!r}")
        return rows[0], _body(rows[0], f"{owner}/{run_id}")

    async def run(self, owner: str, run_id: str) -> dict[str, Any]:
        """One run: its summary, its node tree with each step's status, and the journal's marks."""
        head, body = await self._head(owner, run_id)
        rows = await self._rows(
            f"SELECT {_COLS} FROM {self._t} WHERE session_id = ? AND run_id = ? AND step_key <> ? "
            "ORDER BY step_key LIMIT ?",
            [owner, run_id, _RUN, MAX_STEPS + 1],
        )
        more = len(rows) > MAX_STEPS
        steps: dict[str, dict[str, Any]] = {}
        marks = []
        bodies: dict[str, dict[str, Any]] = {}
        for r in rows[:MAX_STEPS]:
            key = str(r["step_key"])
            if key.startswith("@"):
                marks.append({"key": key, "status": r["status"], "updated_at": r["updated_at"]})
            else:
                bodies[key] = _body(r, f"{owner}/{run_id}/{key}")
                steps[key] = _step_json(key, r, bodies[key])
        root = _map(_map(body.get("spec")).get("root"))
        tree = _TreeBuilder(root, steps, bodies, head["status"] == "running").node(root, ())
        return {
            "run": _run_json(head, body),
            "tree": tree,
            "marks": marks,
            "steps": len(steps),
            "more_steps": more,
        }

    async def step(self, owner: str, run_id: str, key: str) -> dict[str, Any]:
        """One step's journal row in full (the "show all" and raw views)."""
        rows = await self._rows(
            f"SELECT {_COLS} FROM {self._t} WHERE session_id = ? AND run_id = ? AND step_key = ? LIMIT 1",
            [owner, run_id, key],
        )
        if not rows:
            raise SessionNotFoundError(f"no step {key!r} in workflow run {run_id!r}")
        r = rows[0]
        return {"key": key, "status": r["status"], "body": _body(r, f"{owner}/{run_id}/{key}")}
