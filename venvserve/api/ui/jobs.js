// The "Jobs" view: submit a file as a background job, follow each job's progress live
// (server-sent events), cancel it, download its result as text or markdown.

import { api, describeError, el, getKey, stream, toast } from "./api.js";

const $ = (id) => document.getElementById(id);
const RUNNING = new Set(["queued", "running"]);
const followed = new Map(); // job id -> AbortController of its event stream
let timer = null;

export function initJobs() {
  const view = $("view-jobs");
  view.replaceChildren(
    el("form", { id: "job-form", class: "job-form" },
      el("input", { id: "job-file", type: "file", accept: "image/*,application/pdf,.pdf", required: true }),
      el("select", { id: "job-model", "aria-label": "Model" }),
      el("select", { id: "job-format", "aria-label": "Format" },
        el("option", { value: "text" }, "Text"), el("option", { value: "markdown" }, "Markdown")),
      el("button", { id: "job-submit", type: "submit", class: "primary" }, "Submit job")),
    el("p", { class: "muted small" },
      "Jobs run in the background, below interactive requests, and survive a restart of the server. ",
      "Their results are kept for a while after they finish."),
    el("table", { id: "jobs-table", class: "grid" },
      el("thead", {}, el("tr", {}, ...["Job", "File", "Model", "Status", "Progress", "Pages", ""].map(
        (h) => el("th", {}, h)))),
      el("tbody")),
    el("p", { id: "no-jobs", class: "muted", hidden: true }, "No jobs yet."),
  );
  $("job-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
}

export function showJobs(show) {
  clearInterval(timer);
  if (!show) {
    for (const ctl of followed.values()) ctl.abort();
    followed.clear();
    return;
  }
  loadModels();
  refresh();
  timer = setInterval(refresh, 5000); // jobs submitted elsewhere show up too
}

async function loadModels() {
  try {
    const { data } = await api("/v1/models");
    const select = $("job-model");
    const chosen = select.value;
    select.replaceChildren(...data.filter((m) => m.task === "ocr").map(
      (m) => el("option", { value: m.id, selected: m.id === chosen || (!chosen && m.default) }, m.id)));
  } catch (err) {
    toast(describeError(err));
  }
}

async function submit() {
  const file = $("job-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("model", $("job-model").value);
  form.append("format", $("job-format").value);
  $("job-submit").disabled = true;
  try {
    const job = await api("/v1/jobs", { method: "POST", body: form });
    toast(`Job ${short(job.id)} queued: ${job.pages_total} pages`, "ok");
    $("job-file").value = "";
    await refresh();
  } catch (err) {
    toast(describeError(err));
  } finally {
    $("job-submit").disabled = false;
  }
}

async function refresh() {
  try {
    const { data } = await api("/v1/jobs?limit=50");
    const body = $("jobs-table").querySelector("tbody");
    body.replaceChildren(...data.map(row));
    $("no-jobs").hidden = data.length > 0;
    for (const job of data) if (RUNNING.has(job.status) && !followed.has(job.id)) follow(job.id);
  } catch (err) {
    toast(describeError(err));
  }
}

function row(job) {
  const running = RUNNING.has(job.status);
  return el("tr", { dataset: { job: job.id }, class: `job job-${job.status}` },
    el("td", { class: "mono", title: job.id }, short(job.id)),
    el("td", {}, job.files.map((f) => f.name).join(", ")),
    el("td", {}, job.model),
    el("td", { class: "job-status" }, job.status, job.error ? el("div", { class: "error small" }, job.error.message) : null),
    el("td", {}, el("progress", { class: "job-progress", max: job.pages_total || 1, value: job.pages_done })),
    el("td", { class: "job-pages" }, `${job.pages_done} / ${job.pages_total}`,
      job.pages_failed ? el("span", { class: "error" }, ` (${job.pages_failed} failed)`) : null),
    el("td", { class: "job-actions" },
      running
        ? el("button", { type: "button", class: "danger job-cancel", onclick: () => cancel(job.id) }, "Cancel")
        : [el("button", { type: "button", class: "link job-text", onclick: () => download(job.id, "text") }, "Text"),
          " · ",
          el("button", { type: "button", class: "link job-markdown", onclick: () => download(job.id, "markdown") },
            "Markdown"),
          " · ",
          el("button", { type: "button", class: "link job-delete", onclick: () => remove(job.id) }, "Delete")]));
}

// Live progress: one event stream per unfinished job, while the view is shown.
function follow(id) {
  const ctl = new AbortController();
  followed.set(id, ctl);
  stream(`/v1/jobs/${id}/events`, ({ event, data }) => {
    const update = JSON.parse(data);
    if (event === "page") return progress(id, update.pages_done, update.pages_total);
    if (event === "status" && !RUNNING.has(update.status)) refresh();
  }, ctl.signal).catch(() => {}).finally(() => followed.delete(id));
}

function progress(id, done, total) {
  const tr = document.querySelector(`tr[data-job="${id}"]`);
  if (!tr) return;
  tr.querySelector(".job-progress").value = done;
  tr.querySelector(".job-pages").firstChild.textContent = `${done} / ${total}`;
  tr.querySelector(".job-status").firstChild.textContent = "running";
}

async function cancel(id) {
  try {
    await api(`/v1/jobs/${id}`, { method: "DELETE" });
    followed.get(id)?.abort();
    await refresh();
  } catch (err) {
    toast(describeError(err));
  }
}

async function remove(id) {
  try {
    await api(`/v1/jobs/${id}`, { method: "DELETE" });
    await refresh();
  } catch (err) {
    toast(describeError(err));
  }
}

// A download through fetch (the API key travels in a header), handed to the browser as a file.
async function download(id, format) {
  const key = getKey();
  const res = await fetch(`/v1/jobs/${id}/result?format=${format}`, {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
  });
  if (!res.ok) return toast(`download failed: HTTP ${res.status}`);
  const url = URL.createObjectURL(await res.blob());
  const link = el("a", { href: url, download: `${short(id)}.${format === "markdown" ? "md" : "txt"}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function short(id) { return id.slice(0, 8); }
