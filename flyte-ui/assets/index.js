// The runs list: filters, search, paging, refreshed every two seconds;
// and the form that starts a run of a task this server links.
"use strict";

const PAGE = 50;
let offset = 0;
let tasks = [];

function query() {
  const p = new URLSearchParams();
  for (const id of ["q", "status", "task", "since"]) {
    const v = document.getElementById(id).value.trim();
    if (v) p.set(id, v);
  }
  p.set("offset", offset);
  p.set("limit", PAGE);
  return p.toString();
}

async function load() {
  const message = document.getElementById("message");
  try {
    const data = await api("/runs?" + query());
    showError(message, null);
    const rows = data.runs.map((run) => el("tr", { "data-run": run.id },
      el("td", {}, el("a", { href: "/runs/" + encodeURIComponent(run.id), class: "mono" }, run.id)),
      el("td", {}, run.name || "-"),
      el("td", {}, run.task),
      el("td", {}, badge(run.status)),
      el("td", {}, when(run.started_at)),
      el("td", {}, duration(run.duration_ms)),
      el("td", {}, run.executions > 1 ? run.executions + " executions" : "")));
    fill(document.getElementById("runs"), rows.length ? rows : el("tr", {}, el("td", { colspan: 7 }, "no runs match")));
    const last = Math.min(offset + data.runs.length, data.total);
    fill(document.getElementById("page"), data.total ? `${offset + 1}–${last} of ${data.total}` : "");
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = last >= data.total;
  } catch (e) {
    showError(message, e);
  }
}

function paramInputs(task) {
  const info = tasks.find((t) => t.name === task);
  const box = document.getElementById("start-params");
  fill(box, (info ? info.params : []).map((p) => el("label", {},
    p + " (JSON) ", el("input", { "data-param": p, class: "mono", autocomplete: "off", placeholder: "e.g. 3 or \"text\"" }))));
}

async function loadTasks() {
  const note = document.getElementById("start-note");
  try {
    const data = await api("/tasks");
    tasks = data.tasks;
    if (!data.starts_runs || !tasks.length) {
      fill(note, el("p", { class: "muted" }, "This server links no tasks, so it starts no runs (serve the UI from your own binary)."));
      return;
    }
    const select = document.getElementById("start-task");
    fill(select, tasks.map((t) => el("option", { value: t.name }, t.name)));
    paramInputs(select.value);
    select.addEventListener("change", () => paramInputs(select.value));
    document.getElementById("start-form").hidden = false;
  } catch (e) {
    showError(note, e);
  }
}

async function start(event) {
  event.preventDefault();
  const out = document.getElementById("start-message");
  const inputs = {};
  try {
    for (const input of document.querySelectorAll("[data-param]")) {
      const name = input.getAttribute("data-param");
      try { inputs[name] = JSON.parse(input.value); } catch (_) {
        throw new Error(`parameter ${name}: ${JSON.stringify(input.value)} is not JSON (write text in quotes)`);
      }
    }
    const body = { task: document.getElementById("start-task").value, inputs };
    const name = document.getElementById("start-name").value.trim();
    const key = document.getElementById("start-key").value.trim();
    if (name) body.name = name;
    if (key) body.idempotency_key = key;
    const run = await api("/runs", body);
    location.href = "/runs/" + encodeURIComponent(run.id);
  } catch (e) {
    showError(out, e);
  }
}

document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
document.getElementById("next").addEventListener("click", () => { offset += PAGE; load(); });
document.getElementById("start-form").addEventListener("submit", start);
load();
loadTasks();
setInterval(load, 2000);
