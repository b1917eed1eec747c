// The "Status" view: envs (with live build logs), models, workers, the budget.
// Polls the API every POLL_MS while it is visible; rows are updated in place.

import { api, describeError, el, formatBytes, modelPath, stream, toast } from "./api.js";

const POLL_MS = 1500;
const $ = (id) => document.getElementById(id);

const envDetails = new Map();   // name -> {key, detail}: GET /v1/envs/{name}, fetched when the env changes
const builds = new Map();       // name -> {lines, started, controller, done}
const busy = new Set();         // "load:model", "unload:model", "env:name": a click in flight
const modelLogs = new Map();    // model id -> AbortController of its open log stream
let lastModels = [];            // GET /v1/models, for questions about envs
let timer = null;
let visible = false;
let onConnection = () => {};

export function initStatus(connectionCallback) {
  onConnection = connectionCallback;
  document.addEventListener("visibilitychange", () => visible && schedule(0));
}

export function showStatus(on) {
  visible = on;
  clearTimeout(timer);
  if (on) schedule(0);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(refresh, ms);
}

export async function refresh() {
  if (!visible) return;
  if (document.hidden) return schedule(POLL_MS);
  try {
    const [status, envs, models] = await Promise.all([api("/v1/status"), api("/v1/envs"), api("/v1/models")]);
    renderBudget(status.budget);
    renderEnvs(envs.data);
    lastModels = models.data;
    renderModels(models.data);
    renderWorkers(status.workers);
    $("status-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    onConnection(true);
  } catch (err) {
    onConnection(false, err);
  }
  schedule(POLL_MS);
}

// -- rows, keyed and updated in place --------------------------------------

function syncRows(tbody, items, key, create, update) {
  const existing = new Map([...tbody.children].filter((tr) => tr.dataset.key !== undefined)
    .map((tr) => [tr.dataset.key, tr]));
  let previous = null;
  for (const item of items) {
    const k = key(item);
    let tr = existing.get(k);
    if (!tr) {
      tr = create(item);
      tr.dataset.key = k;
    }
    existing.delete(k);
    update(tr, item);
    const anchor = previous ? previous.nextSibling : tbody.firstChild;
    if (tr !== anchor) tbody.insertBefore(tr, anchor);
    previous = tr;
    // A row may carry a companion row (an env's build log) right below it.
    if (tr.companion) {
      if (tr.companion !== tr.nextSibling) tbody.insertBefore(tr.companion, tr.nextSibling);
      previous = tr.companion;
    }
  }
  for (const tr of existing.values()) {
    tr.companion?.remove();
    tr.remove();
  }
}

const cell = (tr, i) => tr.children[i];
const setText = (node, text) => { if (node.textContent !== String(text)) node.textContent = text; };

function badge(node, text, kind) {
  let b = node.querySelector(".badge");
  if (!b) { b = el("span", { class: "badge" }); node.replaceChildren(b); }
  setText(b, text);
  b.dataset.kind = kind || text;
}

// -- budget -----------------------------------------------------------------

function renderBudget(b) {
  const rows = [
    ["Memory", b.memory_used_mb, b.memory_budget_mb, (v) => `${Math.round(v)} MB`],
    ["GPU memory", b.gpu_memory_used_mb, b.gpu_memory_budget_mb, (v) => `${Math.round(v)} MB`],
    ["Models", b.loaded_models, b.max_loaded_models, (v) => `${v}`],
  ].filter(([name, used, limit]) => name !== "GPU memory" || limit > 0 || used > 0);
  $("budget").replaceChildren(...rows.map(([name, used, limit, fmt]) => {
    const limited = limit > 0;
    const pct = limited ? Math.min(100, (100 * used) / limit) : 0;
    const fill = el("div", { class: "fill", style: `width:${pct.toFixed(1)}%` });
    if (pct > 90) fill.classList.add("high");
    return el("div", { class: "budget-row", dataset: { resource: name } },
      el("span", { class: "label" }, name),
      el("div", { class: `bar${limited ? "" : " unlimited"}`, role: "meter", "aria-valuenow": used,
        "aria-valuemin": 0, "aria-valuemax": limited ? limit : null, "aria-label": name }, fill),
      el("span", { class: "value" }, limited ? `${fmt(used)} of ${fmt(limit)}` : `${fmt(used)} · no limit`));
  }));
}

// -- envs -------------------------------------------------------------------

function renderEnvs(envs) {
  const tbody = $("envs-table").querySelector("tbody");
  syncRows(tbody, envs, (e) => e.name, createEnvRow, updateEnvRow);
  for (const e of envs) {
    const k = `${e.status}|${e.path}|${e.fingerprint}`;
    const known = envDetails.get(e.name);
    if (e.status !== "installing" && (!known || known.key !== k)) {
      envDetails.set(e.name, { key: k, detail: known?.detail || null });
      api(`/v1/envs/${encodeURIComponent(e.name)}`).then((d) => {
        envDetails.set(e.name, { key: k, detail: d });
        const tr = tbody.querySelector(`tr[data-key="${CSS.escape(e.name)}"]`);
        if (tr) updateEnvRow(tr, e);
      }).catch(() => {});
    }
    // A build started elsewhere (a first request, the CLI): follow its log too.
    if (e.status === "installing" && !builds.has(e.name)) follow(e.name, null);
  }
}

function createEnvRow(e) {
  const button = el("button", { type: "button", class: "env-action" });
  button.addEventListener("click", () => envAction(e.name, button.dataset.action));
  const tr = el("tr", { class: "env-row", dataset: { env: e.name } },
    el("td", { class: "name" }, e.name), el("td", { class: "status" }), el("td", { class: "python" }),
    el("td", { class: "size" }), el("td", { class: "builds" }), el("td", { class: "actions" }, button));
  const log = el("pre", { class: "log" });
  const progress = el("div", { class: "progress muted small" });
  tr.companion = el("tr", { class: "log-row", hidden: true, dataset: { companionOf: e.name, env: e.name } },
    el("td", { colspan: 6 }, progress, log));
  return tr;
}

function updateEnvRow(tr, e) {
  const detail = envDetails.get(e.name)?.detail;
  const build = builds.get(e.name);
  const status = build && !build.done ? "installing" : e.status;
  badge(cell(tr, 1), status.replace("_", " "), status);
  cell(tr, 1).dataset.status = status;
  cell(tr, 1).title = e.error || "";
  setText(cell(tr, 2), e.python_version || (e.requires_python ? `needs ${e.requires_python}` : "–"));
  setText(cell(tr, 3), detail && detail.size_bytes != null && e.status !== "not_installed" ? formatBytes(detail.size_bytes) : "–");
  setText(cell(tr, 4), detail?.builds ?? "–");
  const button = cell(tr, 5).querySelector("button");
  const action = { not_installed: "build", failed: "rebuild", outdated: "rebuild", ready: "remove" }[status];
  button.dataset.action = action || "";
  button.hidden = !action;
  button.disabled = busy.has(`env:${e.name}`) || status === "installing";
  setText(button, { build: "Build", rebuild: "Rebuild", remove: "Remove" }[action] || "");
  button.className = `env-action ${action === "remove" ? "ghost danger" : "primary"}`;
}

async function envAction(name, action) {
  if (!action) return;
  if (action === "remove") {
    if (!confirm(`Remove every build of env ${name}? Models using it will rebuild it on their next request.`)) return;
    busy.add(`env:${name}`);
    try {
      await api(`/v1/envs/${encodeURIComponent(name)}`, { method: "DELETE" });
      toast(`env ${name} removed`, "info");
    } catch (err) {
      toast(describeError(err));
    } finally {
      busy.delete(`env:${name}`);
      refresh();
    }
    return;
  }
  const question = gpuQuestion(name);
  if (question && !confirm(question)) return;
  busy.add(`env:${name}`);
  const install = () => api(`/v1/envs/${encodeURIComponent(name)}/install`, { method: "POST" });
  await follow(name, install);
  busy.delete(`env:${name}`);
  refresh();
}

// A CUDA env on a machine without a GPU: several GB for models that will not run here.
function gpuQuestion(env) {
  const cuda = lastModels.filter((m) => m.python_env === env && m.device === "cuda");
  if (!cuda.length || cuda.some((m) => m.available)) return null;
  const ids = cuda.map((m) => m.id).join(", ");
  return `Env ${env} is for ${ids}, which need${cuda.length > 1 ? "" : "s"} a CUDA GPU, and this server has none:\n\n`
    + `${cuda[0].reason || "no GPU was found"}\n\n`
    + "Building downloads several GB, and the model still cannot run here. Build anyway?";
}

// Open the env's log stream; once subscribed, run `start` (the install), if any.
// The stream ends when the env leaves "installing" after the start settled.
function follow(name, start) {
  const controller = new AbortController();
  const build = { lines: 0, started: performance.now(), controller, done: false, settled: !start };
  builds.set(name, build);
  const companion = () => $("envs-table").querySelector(`tr.log-row[data-env="${CSS.escape(name)}"]`);
  const row = companion();
  if (row) {
    row.hidden = false;
    row.querySelector(".log").textContent = "";
  }
  const progress = () => {
    const r = companion();
    if (!r) return;
    const secs = ((performance.now() - build.started) / 1000).toFixed(0);
    const text = build.done ? build.summary
      : `building… ${secs} s · ${build.lines} line${build.lines === 1 ? "" : "s"} from uv`;
    setText(r.querySelector(".progress"), text);
  };
  const ticker = setInterval(progress, 500);
  const finish = (summary) => {
    if (build.done) return;
    build.done = true;
    build.summary = summary;
    clearInterval(ticker);
    progress();
    setTimeout(() => controller.abort(), 200);
  };
  let startedInstall = false;
  return new Promise((resolve) => {
    const begin = () => {
      if (startedInstall || !start) return;
      startedInstall = true;
      start().then((detail) => {
        build.settled = true;
        const secs = ((performance.now() - build.started) / 1000).toFixed(1);
        finish(`built in ${secs} s${detail?.python_version ? ` · Python ${detail.python_version}` : ""}`);
        toast(`env ${name} is ${detail?.status || "ready"}`, "info");
      }).catch((err) => {
        build.settled = true;
        finish(`build failed: ${describeError(err)}`);
        toast(describeError(err));
      });
    };
    stream(`/v1/envs/${encodeURIComponent(name)}/log/stream`, ({ event, data }) => {
      if (event === "status") {
        const { status } = JSON.parse(data);
        const r = companion();
        const tr = r?.previousSibling;
        if (tr) badge(cell(tr, 1), (build.done ? status : "installing").replace("_", " "), build.done ? status : "installing");
        begin();
        if (!start && status !== "installing") finish(`env ${status.replace("_", " ")}`);
        return;
      }
      build.lines += data.split("\n").length;  // one event may carry several lines
      const r = companion();
      if (r) {
        const log = r.querySelector(".log");
        log.append(`${data}\n`);
        log.scrollTop = log.scrollHeight;
      }
    }, controller.signal).catch((err) => {
      begin();  // the stream is a nicety: build anyway
      if (err.name !== "AbortError") toast(`log stream: ${describeError(err)}`);
    }).finally(() => {
      clearInterval(ticker);
      if (!build.done) { build.done = true; build.summary = build.summary || ""; }
      builds.delete(name);
      resolve();
    });
  });
}

// -- models -----------------------------------------------------------------

function renderModels(models) {
  syncRows($("models-table").querySelector("tbody"), models, (m) => m.id, createModelRow, updateModelRow);
}

function createModelRow(m) {
  const load = el("button", { type: "button", class: "primary load" }, "Load");
  const unload = el("button", { type: "button", class: "ghost unload" }, "Unload");
  const logs = el("button", { type: "button", class: "ghost logs", "aria-expanded": "false" }, "Log");
  load.addEventListener("click", () => modelAction(m.id, "load"));
  unload.addEventListener("click", () => modelAction(m.id, "unload"));
  logs.addEventListener("click", () => toggleModelLog(m.id, logs));
  const tr = el("tr", { dataset: { model: m.id } },
    el("td", { class: "name" }, el("span", {}, m.id), m.default ? el("span", { class: "tag" }, "default") : null),
    el("td", {}, m.architecture), el("td", {}, m.python_env || "(gateway)"), el("td", { class: "available" }),
    el("td", { class: "state" }), el("td", { class: "workers" }), el("td", { class: "queued" }),
    el("td", { class: "actions" }, load, unload, logs));
  tr.companion = el("tr", { class: "log-row model-log-row", hidden: true, dataset: { logOf: m.id } },
    el("td", { colspan: 8 }, el("div", { class: "progress muted small" }), el("pre", { class: "log" })));
  return tr;
}

// The model's worker output, live: the last lines, then each new one (GET .../logs?follow=true).
function toggleModelLog(id, button) {
  const row = $("models-table").querySelector(`tr.model-log-row[data-log-of="${CSS.escape(id)}"]`);
  const open = modelLogs.get(id);
  if (open) {
    open.abort();
    modelLogs.delete(id);
    if (row) row.hidden = true;
    button.setAttribute("aria-expanded", "false");
    return;
  }
  if (!row) return;
  const controller = new AbortController();
  modelLogs.set(id, controller);
  row.hidden = false;
  button.setAttribute("aria-expanded", "true");
  const log = row.querySelector(".log");
  const note = row.querySelector(".progress");
  log.textContent = "";
  setText(note, "worker output, live");
  let lines = 0;
  stream(`/v1/models/${modelPath(id)}/logs?follow=true&n=200`, ({ data }) => {
    const line = JSON.parse(data);
    const at = new Date(line.t * 1000).toLocaleTimeString();
    log.append(`${at} [${line.pid ?? "-"}] ${line.line}\n`);
    lines += 1;
    setText(note, `worker output, live · ${lines} line${lines === 1 ? "" : "s"}`);
    log.scrollTop = log.scrollHeight;
  }, controller.signal).catch((err) => {
    if (err.name !== "AbortError") setText(note, `log: ${describeError(err)}`);
  });
}

function updateModelRow(tr, m) {
  const avail = cell(tr, 3);
  if (m.available) badge(avail, "yes", "ready");
  else badge(avail, "no", "failed");
  avail.title = m.reason || "";
  let reason = avail.querySelector(".reason");
  if (m.reason) {
    if (!reason) { reason = el("div", { class: "reason small muted" }); avail.append(reason); }
    setText(reason, m.reason);
  } else if (reason) reason.remove();
  const state = m.state === "loading" || (m.activity && !["idle", "ready", "failed"].includes(m.activity))
    ? m.activity : m.state;
  badge(cell(tr, 4), state, m.state);
  cell(tr, 4).dataset.state = m.state;
  setText(cell(tr, 5), m.workers ?? 0);
  setText(cell(tr, 6), m.queued ?? 0);
  const [load, unload] = cell(tr, 7).querySelectorAll("button");
  load.disabled = !m.available || m.state === "loaded" || m.state === "loading" || busy.has(`load:${m.id}`);
  unload.disabled = !m.workers || busy.has(`unload:${m.id}`);
  setText(load, busy.has(`load:${m.id}`) ? "Loading…" : "Load");
  setText(unload, busy.has(`unload:${m.id}`) ? "Unloading…" : "Unload");
}

async function modelAction(id, action) {
  busy.add(`${action}:${id}`);
  refresh();
  try {
    const answer = await api(`/v1/models/${modelPath(id)}/${action}`, { method: "POST" });
    toast(`${id}: ${answer.state}`, "info");
  } catch (err) {
    toast(describeError(err));
  } finally {
    busy.delete(`${action}:${id}`);
    refresh();
  }
}

// -- workers ----------------------------------------------------------------

function renderWorkers(workers) {
  syncRows($("workers-table").querySelector("tbody"), workers, (w) => String(w.id),
    () => el("tr", {}, ...Array.from({ length: 9 }, () => el("td"))),
    (tr, w) => {
      const values = [w.id, w.model, w.pid ?? "–", null, w.in_flight ? "busy" : `${Math.round(w.idle_s)} s`,
        w.in_flight, w.requests, w.rss_mb != null ? `${Math.round(w.rss_mb)} MB` : "–",
        w.gpu_mb != null ? `${Math.round(w.gpu_mb)} MB` : "–"];
      values.forEach((v, i) => { if (v !== null) setText(cell(tr, i), v); });
      badge(cell(tr, 3), w.state, w.state);
    });
  $("no-workers").hidden = workers.length > 0;
}
