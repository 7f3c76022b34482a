// power-loop inspector: every value from the store is inserted as text (textContent / text nodes),
// never as markup, so a tool result such as "<script>…</script>" is displayed, not run.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
let pollTimer = null;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function api(path) {
  const headers = TOKEN ? { "X-Inspector-Token": TOKEN } : {};
  const response = await fetch("/api/" + path, { headers, cache: "no-store" });
  const data = await response.json();
  if (!response.ok) throw new Error((data && data.error) || response.statusText);
  return data;
}

const fmtTime = (ms) => (ms ? new Date(Number(ms)).toISOString().replace("T", " ").slice(0, 19) : "—");
const fmtNum = (n) => Number(n || 0).toLocaleString("en-US");
const sessionLink = (sid) => el("a", { href: "#/s/" + encodeURIComponent(sid), className: "mono" }, sid);
const badge = (text, cls) => el("span", { className: "badge " + (cls || text) }, text);
const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));

function rawToggle(load) {
  // The raw JSON of a row, fetched (or taken) on first open and shown as text.
  let box = null;
  const button = el("button", { className: "link raw-toggle", title: "raw JSON of this row" }, "{ }");
  button.addEventListener("click", async () => {
    if (box) { box.remove(); box = null; return; }
    box = el("pre", { className: "raw" }, "…");
    button.after(box);
    try { box.textContent = JSON.stringify(await load(), null, 2); }
    catch (err) { box.textContent = String(err); }
  });
  return button;
}

function showError(err) {
  const app = document.getElementById("app");
  app.replaceChildren(el("div", { className: "error-box" }, String(err.message || err)));
}

// ---- sessions list ---------------------------------------------------------------------------------

function sessionRows(list, depth, out) {
  for (const s of list) {
    const row = el("tr", { className: depth ? "child" : "", style: depth ? "--depth:" + depth : null, "data-sid": s.session_id },
      el("td", {}, sessionLink(s.session_id), " ", s.kind === "subagent" ? badge("sub-agent", "kind") : null),
      el("td", {}, fmtTime(s.created_at)),
      el("td", {}, fmtTime(s.last_activity)),
      el("td", { className: "num" }, fmtNum(s.sends)),
      el("td", { className: "num" }, fmtNum(s.total_tokens)),
      el("td", {}, badge(s.state)),
      el("td", {}, s.parent_session_id ? sessionLink(s.parent_session_id) : "—"));
    out.push(row);
    sessionRows(s.children || [], depth + 1, out);
  }
  return out;
}

async function renderList(params) {
  const q = params.get("q") || "";
  const cursor = params.get("cursor") || "";
  const data = await api("sessions?limit=50&q=" + encodeURIComponent(q) + "&cursor=" + encodeURIComponent(cursor));
  const input = el("input", { type: "search", placeholder: "search id, model, metadata…", value: q, id: "search" });
  const go = () => { location.hash = "#/?q=" + encodeURIComponent(input.value); };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  const rows = sessionRows(data.sessions, 0, []);
  const table = el("table", { id: "sessions" },
    el("thead", {}, el("tr", {}, ["session", "created", "last activity", "sends", "tokens", "status", "parent"]
      .map((h) => el("th", { className: h === "sends" || h === "tokens" ? "num" : "" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, className: "muted" }, "no sessions"))));
  const pager = el("div", { className: "pager" },
    cursor ? el("a", { href: "#/?q=" + encodeURIComponent(q) }, "« first page") : null,
    data.next ? el("a", { id: "next-page", href: "#/?q=" + encodeURIComponent(q) + "&cursor=" + encodeURIComponent(data.next) }, "next page »") : null,
    el("span", { className: "muted" }, `${data.sessions.length} ${q ? "matching" : "root"} session${data.sessions.length === 1 ? "" : "s"} on this page (at most ${data.limit}), newest first`));
  document.getElementById("app").replaceChildren(
    el("h1", {}, q ? `Sessions matching “${q}”` : "Sessions"),
    el("div", { className: "toolbar" }, input, el("button", { onclick: go }, "Search")),
    table, pager);
}

// ---- one session -------------------------------------------------------------------------------------

function barChart(points, label) {
  // points: [{x, a, b, title}] drawn as stacked bars (a light, b dark) in an inline SVG.
  // Bars keep a readable width; a long session squeezes them into 600 units (the SVG scales to fit).
  const H = 110, pad = 14;
  const bw = Math.max(2, Math.min(24, (600 - pad) / points.length - 2));
  const W = Math.max(240, pad + points.length * (bw + 2));
  const max = Math.max(1, ...points.map((p) => p.a + p.b));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMinYMax meet", role: "img", "aria-label": label });
  points.forEach((p, i) => {
    const x = pad + i * (bw + 2);
    const ha = ((H - pad) * p.a) / max, hb = ((H - pad) * p.b) / max;
    chart.append(svg("g", {}, svg("title", {}, p.title),
      svg("rect", { class: "p", x, y: H - pad - ha - hb, width: bw, height: ha }),
      svg("rect", { class: "c", x, y: H - pad - hb, width: bw, height: hb })));
    if (points.length <= 40) chart.append(svg("text", { x: x + bw / 2, y: H - 2, "text-anchor": "middle" }, p.x));
  });
  return el("div", { className: "chart", id: "usage-chart" }, el("div", { className: "muted" }, label), chart);
}

function usageChart(usage, loaded) {
  if (usage.length) {
    return barChart(usage.map((u) => ({ x: u.send_index, a: u.prompt_tokens, b: u.completion_tokens,
      title: `send ${u.send_index}: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens, ${u.rounds} rounds` })),
      "tokens per send (prompt light, completion dark)");
  }
  // No per-round usage in this store: chart what the loaded timeline shows instead.
  const per = new Map();
  for (const m of loaded) {
    if (m.send_index === null || m.send_index === undefined) continue;
    const c = per.get(m.send_index) || { a: 0, b: 0 };
    if (m.role === "tool") c.a += 1; else c.b += 1;
    per.set(m.send_index, c);
  }
  if (!per.size) return el("p", { className: "muted" }, "no usage recorded");
  return barChart([...per].map(([x, c]) => ({ x, a: c.a, b: c.b, title: `send ${x}: ${c.b} messages, ${c.a} tool results` })),
    "no per-round token usage stored: messages per send (tool results light)");
}

function panel(title, id, items, render) {
  return el("div", { className: "panel", id },
    el("h3", {}, `${title} (${items.length})`),
    items.length ? el("ul", {}, items.map((item) => el("li", {}, render(item), " ", rawToggle(async () => item))))
      : el("p", { className: "muted" }, "none"));
}

function renderHeader(d) {
  const s = d.session, st = d.stats || {};
  const live = s.state === "running" || s.state === "pending";
  return el("div", { id: "session-head" },
    el("h1", {}, s.session_id, " ", badge(s.state), " ", rawToggle(async () => d.session)),
    el("div", { className: "meta" },
      el("span", {}, "kind: " + s.kind + (s.kind === "subagent" ? " · " + s.lifecycle : "")),
      s.parent_session_id ? el("span", {}, "parent: ", sessionLink(s.parent_session_id)) : null,
      d.workflow_step ? el("span", { id: "workflow-step" }, "workflow step ",
        el("a", { href: runHref(d.workflow_step.owner_session_id, d.workflow_step.run_id) }, d.workflow_step.key)) : null,
      el("span", {}, "model: " + (s.model || "—")),
      el("span", {}, "created " + fmtTime(s.created_at)),
      el("span", {}, "last activity " + fmtTime(s.last_activity)),
      el("span", { className: "live", id: "live" }, live ? "live: send running" : "watching for new sends")),
    el("div", { className: "cards" },
      [["messages", d.messages.n], ["active", d.messages.active], ["sends", st.sends], ["rounds", st.rounds],
       ["model calls", st.llm_calls], ["tool calls", st.tool_calls], ["prompt tokens", st.prompt_tokens],
       ["completion tokens", st.completion_tokens]]
        .map(([k, v]) => el("div", { className: "card" }, el("div", { className: "v" }, fmtNum(v)), el("div", { className: "k" }, k)))),
    s.system_prompt ? el("details", {}, el("summary", {}, "system prompt"), el("pre", {}, s.system_prompt)) : null);
}

function renderSides(d, loaded) {
  const pending = d.state && d.state.pending ? [d.state.pending] : [];
  return el("div", { className: "grid", id: "session-sides" },
    el("div", { className: "panel" }, el("h3", {}, "Usage per send"), usageChart(d.usage, loaded)),
    panel("Folds", "folds", d.folds, (f) => el("span", {},
      `#${f.from_seq}–#${f.to_seq} folded into #${f.note_seq}` + (f.before_tokens ? ` (${f.before_tokens}→${f.after_tokens} tokens)` : ""),
      f.summary ? el("div", { className: "text fold-summary" }, pretty(f.summary)) : null)),
    panel("Pending calls", "pending", pending, (p) => el("pre", {}, pretty(p))),
    panel("Notes", "notes", d.notes, (n) => el("span", {}, n.pinned ? badge("pinned", "kind") : null, " ", n.content)),
    panel("Follow-ups", "follow-ups", d.follow_ups, (f) => el("span", {}, f.content)),
    panel("Timers", "timers", d.timers, (t) => el("span", {}, `#${t.timer_id} ${t.status} due ${fmtTime(t.due_at)}: `, t.note)),
    // Shown only where hook decisions were recorded (record_hook_events).
    (d.hook_events || []).length === 0 ? null : panel("Hook decisions", "hook-events", d.hook_events, (h) => el("span", {},
      `send ${h.send_index} round ${h.round_index} `, badge(h.decision, "kind"), ` ${h.point} · `,
      el("span", { className: "mono" }, h.hook), h.changed_json ? ` changed ${h.changed_json}` : "",
      h.values_json ? el("div", { className: "text" }, h.values_json) : null)),
    panel("Sub-agents", "children", d.children, (c) => el("span", {}, sessionLink(c.session_id), " ", badge(c.state), ` ${fmtNum(c.total_tokens)} tokens`)),
    // Shown only where there are runs: most sessions never own one.
    (d.workflow_runs || []).length === 0 ? null : panel("Workflow runs", "workflow-runs", d.workflow_runs, (r) => el("span", {},
      el("a", { href: runHref(r.owner_session_id, r.run_id), className: "run-link" }, r.workflow || "workflow"), " ",
      badge(r.status, "wf " + r.status), el("span", { className: "muted mono" }, " " + r.run_id), ` · ${fmtTime(r.created_at)}`)));
}

// ---- one workflow run --------------------------------------------------------------------------------

const runHref = (owner, runId) => "#/w/" + encodeURIComponent(owner) + "/" + encodeURIComponent(runId);
const runApi = (owner, runId) => `sessions/${encodeURIComponent(owner)}/workflows/${encodeURIComponent(runId)}`;

function stepBox(owner, runId, step) {
  // A leaf's journal row: child session, usage, and text / payload / error previews (all as text).
  const text = step.text !== null ? el("div", { className: "text step-text" }, step.text) : null;
  const payload = step.payload !== null ? el("pre", { className: "step-payload" }, step.payload) : null;
  const error = step.error !== null ? el("div", { className: "step-error" }, step.error) : null;
  const usage = step.usage || {};
  const showAll = step.truncated ? el("button", { className: "link show-all", onclick: async (e) => {
    const full = (await api(`${runApi(owner, runId)}/steps/${encodeURIComponent(step.key)}`)).body;
    if (text) text.textContent = pretty(full.text ?? "");
    if (payload) payload.textContent = pretty(full.payload);
    if (error) error.textContent = pretty(full.error ?? "");
    e.target.remove();
  } }, "show all") : null;
  return el("div", { className: "step" },
    el("div", { className: "muted" },
      step.session_id ? el("span", {}, "session ", sessionLink(step.session_id)) : null,
      ` · ${fmtNum(usage.total_tokens)} tokens` + (step.attempts ? ` · attempt ${step.attempts}` : "") + ` · ${fmtTime(step.updated_at)}`,
      " ", rawToggle(() => api(`${runApi(owner, runId)}/steps/${encodeURIComponent(step.key)}`))),
    text, payload, error, showAll);
}

function treeNode(owner, runId, node) {
  const label = node.type === "agent" ? [el("b", {}, node.key), node.agent && node.agent !== node.id ? ` (${node.agent})` : ""]
    : node.type === "item" ? [`item ${node.label}`, node.item !== null && node.item !== undefined ? el("span", { className: "muted" }, ": " + node.item) : null]
    : node.type === "iteration" ? [`iteration ${node.label}`]
    : node.type === "case" ? [`case “${node.label}”`]
    : [node.type, node.id ? el("b", {}, " " + node.id) : null, node.on ? el("span", { className: "muted" }, ` on ${node.on}`) : null];
  const li = el("li", { className: "wf-node " + node.type, "data-type": node.type, "data-status": node.status, "data-key": node.key },
    el("div", { className: "wf-head" }, badge(node.status, "wf " + node.status), " ", label));
  if (node.step) li.append(stepBox(owner, runId, node.step));
  if (node.children && node.children.length) li.append(el("ul", {}, node.children.map((c) => treeNode(owner, runId, c))));
  return li;
}

function renderRunPage(owner, runId, d) {
  const r = d.run, usage = r.usage || {};
  return el("div", { id: "run" },
    el("h1", {}, "workflow ", r.workflow || "?", " ", badge(r.status, "wf " + r.status), " ", rawToggle(async () => d.run)),
    el("div", { className: "meta" },
      el("span", { className: "mono" }, "run " + r.run_id),
      el("span", {}, "owner: ", sessionLink(r.owner_session_id)),
      r.driver_session_id ? el("span", {}, "driver: ", sessionLink(r.driver_session_id)) : null,
      el("span", {}, "started " + fmtTime(r.created_at)),
      el("span", {}, "finished " + fmtTime(r.finished_at)),
      el("span", {}, `${fmtNum(usage.total_tokens)} tokens`),
      el("span", { className: "live", id: "live" }, r.status === "running" ? "live: run in progress" : "watching the journal")),
    r.error ? el("div", { className: "error-box" }, r.error) : null,
    d.more_steps ? el("p", { className: "muted" }, `only the first ${d.steps} steps are shown`) : null,
    el("ul", { className: "wf-tree", id: "wf-tree" }, treeNode(owner, runId, d.tree)),
    d.marks.length ? el("p", { className: "muted" }, "journal marks: " + d.marks.map((m) => `${m.key} ${m.status}`).join(", ")) : null);
}

async function renderRun(owner, runId) {
  const hash = runHref(owner, runId);
  let d = await api(runApi(owner, runId)), last = JSON.stringify(d);
  let page = renderRunPage(owner, runId, d);
  document.getElementById("app").replaceChildren(page);
  const poll = async () => {
    if (location.hash !== hash) return;
    try {
      d = await api(runApi(owner, runId));
      const snapshot = JSON.stringify(d);
      if (snapshot !== last) {  // redraw only on change, so open raw views stay open
        last = snapshot;
        const fresh = renderRunPage(owner, runId, d);
        page.replaceWith(fresh); page = fresh;
      }
    } catch (err) { /* the next poll retries */ }
    pollTimer = setTimeout(poll, POLL_MS);
  };
  pollTimer = setTimeout(poll, POLL_MS);
}

class Timeline {
  constructor(sid) {
    this.sid = sid;
    this.root = el("div", { id: "timeline" });
    this.sends = new Map();
    this.rounds = new Map();
    this.calls = new Map();
    this.callSeq = new Map();
    this.created = new Map();
    this.firstSeq = null;
    this.lastSeq = 0;
  }

  reset() {
    this.root.replaceChildren();
    for (const map of [this.sends, this.rounds, this.calls, this.callSeq, this.created]) map.clear();
  }

  send(index) {
    const key = index === null || index === undefined ? "none" : index;
    if (!this.sends.has(key)) {
      const box = el("section", { className: "send", "data-send": key },
        el("div", { className: "head" }, key === "none" ? "outside a send" : `Send ${key}`, el("span", { className: "muted send-time" })));
      this.root.append(box);
      this.sends.set(key, box);
    }
    return this.sends.get(key);
  }

  round(m) {
    const key = `${m.send_index}:${m.round_index}`;
    if (!this.rounds.has(key)) {
      const box = el("div", { className: "round", "data-round": m.round_index },
        el("div", { className: "rhead" }, `round ${m.round_index ?? "—"}`, el("span", { className: "round-usage" })));
      this.send(m.send_index).append(box);
      this.rounds.set(key, box);
    }
    return this.rounds.get(key);
  }

  setUsage(usage) {
    // Per-round tokens (and model) from usage_rounds, written into the round headers shown.
    for (const send of usage) {
      for (const r of send.per_round || []) {
        const box = this.rounds.get(`${send.send_index}:${r.round_index}`);
        if (box) box.querySelector(".round-usage").textContent =
          ` · ${r.prompt_tokens} prompt + ${r.completion_tokens} completion tokens` + (r.model ? ` · ${r.model}` : "") +
          (r.duration_ms != null ? ` · model call ${r.duration_ms} ms` : "") +
          (r.attempts > 1 ? ` · ${r.attempts} attempts` : "");
      }
    }
  }

  extras(m) {
    const parts = [" ", rawToggle(() => api(`sessions/${encodeURIComponent(this.sid)}/messages/${m.seq}`))];
    if (m.state !== "active") parts.push(" ", badge(m.state === "compacted_out" ? "folded" : m.state, "folded"));
    return parts;
  }

  showAll(m, target) {
    if (!m.truncated) return null;
    return el("button", { className: "link show-all", onclick: async (e) => {
      const full = await api(`sessions/${encodeURIComponent(this.sid)}/messages/${m.seq}`);
      target.textContent = pretty(full.content);
      e.target.remove();
    } }, "show all");
  }

  // The gap between two commits bounds what happened in between (the model call before an assistant
  // message; the tool batch before a result the loop stored no run time for): shown as "+N ms".
  gap(m, fromSeq) {
    const before = this.created.get(fromSeq);
    return before === undefined ? "" : ` · +${Math.max(0, m.created_at - before)} ms`;
  }

  // A tool result's own run time (meta.duration_ms, written by the loop), else the commit gap.
  ran(m, callSeq) {
    const ms = m.meta && m.meta.duration_ms;
    return Number.isInteger(ms) ? ` · ran ${ms} ms` : this.gap(m, callSeq);
  }

  add(m) {
    this.created.set(m.seq, m.created_at);
    this.lastSeq = Math.max(this.lastSeq, m.seq);
    this.firstSeq = this.firstSeq === null ? m.seq : Math.min(this.firstSeq, m.seq);
    const cls = "msg " + m.role + (m.state !== "active" ? " compacted" : "");
    const text = el("span", { className: "text" }, pretty(m.content ?? ""));
    const head = el("span", { className: "who" }, `#${m.seq} ${m.role}${m.name ? " · " + m.name : ""}`);
    if (m.role === "user") {
      this.send(m.send_index).querySelector(".send-time").textContent = " " + fmtTime(m.created_at);
      this.send(m.send_index).append(el("div", { className: cls, "data-seq": m.seq }, head, text, this.showAll(m, text), this.extras(m)));
      return;
    }
    if (m.role === "tool" && this.calls.has(m.tool_call_id)) {
      this.calls.get(m.tool_call_id).querySelector(".waiting")?.remove();
      const isError = typeof m.content === "string" && /^Error\b/.test(m.content);
      this.calls.get(m.tool_call_id).append(el("div", { className: "result" + (isError ? " error" : "") + (m.state !== "active" ? " compacted" : ""), "data-seq": m.seq },
        el("div", { className: "label" }, `#${m.seq} ${isError ? "error" : "result"} · ${fmtTime(m.created_at)}${this.ran(m, this.callSeq.get(m.tool_call_id))}`, this.extras(m)),
        el("pre", { className: "tool-result" }, text), this.showAll(m, text)));
      return;
    }
    const box = el("div", { className: cls, "data-seq": m.seq }, head,
      m.role === "assistant" ? el("span", { className: "muted model-call" }, "model call · " + fmtTime(m.created_at) + this.gap(m, m.seq - 1) + " ") : null,
      text, this.showAll(m, text), this.extras(m));
    for (const call of m.tool_calls || []) {
      const fn = call.function || {};
      let args = fn.arguments;
      try { args = JSON.stringify(JSON.parse(args), null, 2); } catch (_) { /* shown as sent */ }
      const callBox = el("div", { className: "call", "data-call": call.id },
        el("div", { className: "chead" }, "tool call ", el("b", {}, fn.name || "?"), el("span", { className: "muted mono" }, " " + (call.id || ""))),
        el("pre", { className: "args" }, args ?? ""),
        el("div", { className: "result waiting muted" }, "no result yet"));
      this.calls.set(call.id, callBox);
      this.callSeq.set(call.id, m.seq);
      box.append(callBox);
    }
    this.round(m).append(box);
  }
}

async function renderSession(sid) {
  const [detail, page] = await Promise.all([api("sessions/" + encodeURIComponent(sid)), api(`sessions/${encodeURIComponent(sid)}/messages?limit=200`)]);
  const timeline = new Timeline(sid);
  let loaded = page.messages;
  const earlier = el("button", { id: "load-earlier" }, "load earlier messages");
  let usage = detail.usage, counted = detail.messages;
  const redraw = () => { timeline.reset(); loaded.forEach((m) => timeline.add(m)); timeline.setUsage(usage); earlier.hidden = !more; };
  let more = page.more;
  earlier.addEventListener("click", async () => {
    const older = await api(`sessions/${encodeURIComponent(sid)}/messages?limit=200&before=${timeline.firstSeq}`);
    loaded = older.messages.concat(loaded);
    more = older.more;
    redraw();
  });
  let head = renderHeader(detail), sides = renderSides(detail, loaded), last = JSON.stringify(detail) + loaded.length;
  redraw();
  document.getElementById("app").replaceChildren(head, sides, el("h2", {}, "Timeline"), earlier, timeline.root);
  const poll = async () => {
    if (location.hash !== "#/s/" + encodeURIComponent(sid)) return;
    try {
      const fresh = await api(`sessions/${encodeURIComponent(sid)}/messages?limit=500&after=${timeline.lastSeq}`);
      fresh.messages.forEach((m) => { loaded.push(m); timeline.add(m); });
      // Counting messages scans an index: recount only when new messages arrived.
      const d = await api("sessions/" + encodeURIComponent(sid) + (fresh.messages.length ? "" : "?counts=0"));
      if (d.messages.n === null) d.messages = counted;
      counted = d.messages;
      const snapshot = JSON.stringify(d) + loaded.length;
      if (snapshot !== last) {  // redraw only on change, so open raw views stay open
        last = snapshot;
        usage = d.usage;
        timeline.setUsage(usage);
        const h = renderHeader(d), s = renderSides(d, loaded);
        head.replaceWith(h); sides.replaceWith(s); head = h; sides = s;
      }
    } catch (err) { /* the next poll retries */ }
    pollTimer = setTimeout(poll, POLL_MS);
  };
  pollTimer = setTimeout(poll, POLL_MS);
}

// ---- routing ---------------------------------------------------------------------------------------

async function route() {
  clearTimeout(pollTimer);
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/s/")) await renderSession(decodeURIComponent(hash.slice(4)));
    else if (hash.startsWith("#/w/")) {
      const [owner, runId] = hash.slice(4).split("/").map(decodeURIComponent);
      await renderRun(owner, runId);
    }
    else await renderList(new URLSearchParams(hash.split("?")[1] || ""));
    document.body.dataset.ready = hash;
  } catch (err) { showError(err); }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  try {
    const info = await api("info");
    document.getElementById("store-label").textContent = info.dsn + " · prefix " + info.prefix;
  } catch (err) { showError(err); return; }
  route();
});
