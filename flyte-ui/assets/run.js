// One run, live: its header from the event stream, its summary, timeline
// and failures read again as actions end (at most twice a second), its tree
// and actions on demand, its logs as they come.
"use strict";

const runRef = decodeURIComponent(location.pathname.split("/").pop());
let run = null;
let lastEnded = -1;
let refreshing = false;
let refreshAgain = false;
let zoom = null; // {from_us, to_us} or null for the whole run
let timelineData = null;
const COLORS = ["#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#06b6d4", "#84cc16", "#ec4899", "#6366f1", "#14b8a6", "#f97316", "#64748b"];

function showRun(view) {
  run = view;
  document.title = "flyte " + (view.name || view.id);
  fill(document.getElementById("crumb"), view.id);
  fill(document.getElementById("title"), view.name ? view.name + " · " + view.task : view.task);
  fill(document.getElementById("status"), badge(view.status));
  const facts = [
    ["run", view.id], ["started", when(view.started_at)],
    [view.ended_at ? "took" : "running for", view.ended_at ? duration(view.duration_ms) : duration(Date.now() - new Date(view.started_at))],
    ["actions ended", view.ended_actions], ["executions", view.executions],
  ];
  if (view.lost_actions) facts.push(["lost actions", view.lost_actions]);
  fill(document.getElementById("facts"), facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  fill(document.getElementById("run-error"), view.error ? el("div", { class: "error" }, `[${view.error.kind}] ${view.error.message}`) : null);
  fill(document.getElementById("progress"), view.progress ? view.progress.lines.join("\n") : "");
  document.getElementById("abort").hidden = !view.can.abort;
  document.getElementById("resume").hidden = !view.can.resume;
  document.getElementById("rerun").hidden = !view.can.rerun;
  if (view.ended_actions !== lastEnded) {
    lastEnded = view.ended_actions;
    refresh();
  }
}

/** The summary and the timeline, read again; never two at once. */
async function refresh() {
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  const began = Date.now();
  try {
    const [summary, timeline] = await Promise.all([api(`/runs/${encodeURIComponent(runRef)}/summary`), loadTimeline()]);
    showSummary(summary);
    timelineData = timeline;
    drawTimeline();
    showError(document.getElementById("message"), null);
    // A mark for tests and benchmarks: the page has painted the run once.
    document.body.setAttribute("data-painted", "1");
  } catch (e) {
    showError(document.getElementById("message"), e);
  } finally {
    // At most twice a second while the run goes on, and never more than
    // half the time on it: a large run's digest takes longer to make.
    setTimeout(() => {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; refresh(); }
    }, Math.max(500, Date.now() - began));
  }
}

function loadTimeline() {
  const p = new URLSearchParams({ buckets: 400 });
  if (zoom) { p.set("from_us", Math.round(zoom.from_us)); p.set("to_us", Math.round(zoom.to_us)); }
  return api(`/runs/${encodeURIComponent(runRef)}/timeline?` + p);
}

function showSummary(s) {
  // One line per site, as the live progress shows them: the items of every
  // fan-out of one task from one caller together.
  const rows = s.sites.map((f) => el("tr", {},
    el("td", {}, f.label + (f.kind === "items of" ? " (not ended)" : "")),
    el("td", {}, f.fan_outs),
    el("td", {}, f.actions),
    el("td", {}, f.succeeded),
    el("td", {}, f.failed),
    el("td", {}, duration(f.p50_ms)),
    el("td", {}, duration(f.wait_p50_ms)),
    el("td", {}, f.achieved_concurrency === null ? "-" : f.achieved_concurrency.toFixed(1))));
  fill(document.getElementById("fan-outs"), rows.length ? rows : el("tr", {}, el("td", { colspan: 8, class: "muted" }, "no fan-out yet")));
  const t = s.totals;
  fill(document.getElementById("totals"),
    `${t.actions} actions: ${t.succeeded} succeeded, ${t.failed} failed, ${t.cancelled} cancelled, ${t.running} running` +
    (t.cached ? `, ${t.cached} cached` : "") + (t.replayed ? `, ${t.replayed} replayed` : "") + (t.retried ? `, ${t.retried} retried` : ""));
  const failures = s.failures.map((g) => el("tr", {},
    el("td", {}, g.count), el("td", {}, g.task), el("td", {}, g.kind),
    el("td", { title: g.message }, g.cause),
    el("td", {}, el("a", { href: "#", class: "mono", onclick: (e) => { e.preventDefault(); openAction(g.example_action); } }, g.example_action))));
  fill(document.getElementById("failures"), failures.length ? failures : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "none")));
}

/** One band per fan-out site, each on its own scale: what executed (solid)
 *  and what waited for a slot (lighter, above it), per time bucket. */
function drawTimeline() {
  const canvas = document.getElementById("timeline");
  const d = timelineData;
  if (!d) return;
  const BAND = 46, GAP = 8, AXIS = 18;
  canvas.height = Math.max(1, d.sites.length) * (BAND + GAP) + AXIS;
  const ctx = canvas.getContext("2d");
  const W = canvas.width, n = d.buckets;
  ctx.clearRect(0, 0, W, canvas.height);
  ctx.font = "11px sans-serif";
  d.sites.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const bottom = i * (BAND + GAP) + BAND;
    let peak = 0;
    for (let b = 0; b < n; b++) peak = Math.max(peak, s.executing[b] + s.waiting[b]);
    peak = peak || 1;
    const y = (v) => bottom - (v / peak) * (BAND - 12);
    const area = (lower, upper, alpha) => {
      ctx.beginPath();
      ctx.moveTo(0, y(lower(0)));
      for (let b = 0; b < n; b++) { ctx.lineTo((b / n) * W, y(upper(b))); ctx.lineTo(((b + 1) / n) * W, y(upper(b))); }
      for (let b = n - 1; b >= 0; b--) { ctx.lineTo(((b + 1) / n) * W, y(lower(b))); ctx.lineTo((b / n) * W, y(lower(b))); }
      ctx.closePath();
      ctx.globalAlpha = alpha;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;
    };
    area(() => 0, (b) => s.executing[b], 1);
    area((b) => s.executing[b], (b) => s.executing[b] + s.waiting[b], 0.28);
    ctx.strokeStyle = "#e5e7eb";
    ctx.beginPath(); ctx.moveTo(0, bottom + 0.5); ctx.lineTo(W, bottom + 0.5); ctx.stroke();
    ctx.fillStyle = "#374151";
    ctx.fillText(`${s.label}: up to ${peak.toFixed(1)} at once`, 4, bottom - BAND + 10);
  });
  ctx.fillStyle = "#666";
  const span = (d.to_us - d.from_us) / 1000;
  const offset = (d.from_us - d.run_start_us) / 1000;
  ctx.fillText("+" + duration(offset), 2, canvas.height - 5);
  const end = "+" + duration(offset + span);
  ctx.fillText(end, W - ctx.measureText(end).width - 2, canvas.height - 5);
  fill(document.getElementById("legend"), d.sites.map((s, i) => el("span", { class: "key" },
    swatch(COLORS[i % COLORS.length]), `${s.label} (${s.actions} actions, ${duration(s.busy_ms)} executing)`)),
    el("span", { class: "muted" }, " lighter: waiting for a slot"));
}

function swatch(color) {
  const node = el("i", { class: "swatch" });
  node.style.background = color; // CSSOM, not markup: allowed by the policy
  return node;
}

function timelineZoom() {
  const canvas = document.getElementById("timeline");
  let from = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    return timelineData.from_us + f * (timelineData.to_us - timelineData.from_us);
  };
  canvas.addEventListener("mousedown", (e) => { if (timelineData) from = at(e); });
  canvas.addEventListener("mouseup", async (e) => {
    if (from === null || !timelineData) return;
    const to = at(e);
    const [a, b] = from < to ? [from, to] : [to, from];
    from = null;
    if (b - a < (timelineData.to_us - timelineData.from_us) / 200) return;
    zoom = { from_us: a, to_us: b };
    timelineData = await loadTimeline();
    drawTimeline();
  });
  canvas.addEventListener("dblclick", async () => {
    zoom = null;
    timelineData = await loadTimeline();
    drawTimeline();
  });
}

async function showTree() {
  const box = document.getElementById("tree");
  try {
    const data = await api(`/runs/${encodeURIComponent(runRef)}/tree`);
    const children = data.nodes.map(() => []);
    const roots = [];
    data.nodes.forEach((node, i) => (node.parent >= 0 ? children[node.parent] : roots).push(i));
    const item = (i) => {
      const node = data.nodes[i];
      const label = node.kind === "action"
        ? el("a", { href: "#", onclick: (e) => { e.preventDefault(); openAction(node.id); } }, node.label)
        : el("b", {}, node.label);
      const line = el("div", { class: "node" }, node.status ? badge(node.status) : null, " ", label, " ",
        el("span", { class: "muted" }, node.detail), node.error ? el("div", { class: "error" }, node.error) : null);
      if (!children[i].length) return el("li", {}, line);
      return el("li", {}, el("details", { open: children[i].length <= 20 }, el("summary", {}, line),
        el("ul", {}, children[i].map(item))));
    };
    fill(box, el("ul", { class: "tree" }, roots.map(item)),
      data.left_out ? el("p", { class: "muted" }, `${data.left_out} more actions not shown`) : null);
  } catch (e) {
    showError(box, e);
  }
}

async function openAction(id) {
  const box = document.getElementById("action-box");
  box.hidden = false;
  fill(document.getElementById("action-title"), id);
  try {
    const a = await api(`/runs/${encodeURIComponent(runRef)}/actions/${encodeURIComponent(id)}`);
    fill(document.getElementById("action"), JSON.stringify(a, null, 2));
  } catch (e) {
    fill(document.getElementById("action"), String(e.message));
  }
  box.scrollIntoView({ block: "nearest" });
}

function appendLogs(lines) {
  const box = document.getElementById("logs");
  for (const l of lines) {
    box.append(el("div", { class: "log " + l.level.toLowerCase() },
      el("span", { class: "muted" }, when(l.at) + " "), el("b", {}, l.level + " "),
      l.action ? el("span", { class: "mono muted" }, l.action + " ") : null, l.message));
  }
  while (box.childNodes.length > 5000) box.firstChild.remove();
}

async function operate(what) {
  const out = document.getElementById("op-message");
  try {
    const view = await api(`/runs/${encodeURIComponent(run.id)}/${what}`, {});
    if (what === "rerun") { location.href = "/runs/" + encodeURIComponent(view.id); return; }
    fill(out, what === "abort" ? "asked the run to cancel" : "resumed");
    if (what === "resume") listen();
  } catch (e) {
    showError(out, e);
  }
}

let source = null;
function listen() {
  if (source) source.close();
  source = new EventSource(`/api/v1/runs/${encodeURIComponent(runRef)}/events`);
  source.addEventListener("run", (e) => showRun(JSON.parse(e.data)));
  source.addEventListener("logs", (e) => appendLogs(JSON.parse(e.data)));
  source.addEventListener("end", (e) => { showRun(JSON.parse(e.data)); source.close(); source = null; refresh(); });
  source.addEventListener("error", (e) => {
    if (e.data) showError(document.getElementById("message"), new Error(JSON.parse(e.data).message));
  });
}

document.getElementById("abort").addEventListener("click", () => operate("abort"));
document.getElementById("resume").addEventListener("click", () => operate("resume"));
document.getElementById("rerun").addEventListener("click", () => operate("rerun"));
document.getElementById("tree-button").addEventListener("click", showTree);
timelineZoom();
api(`/runs/${encodeURIComponent(runRef)}`).then(showRun).catch((e) => showError(document.getElementById("message"), e));
listen();
