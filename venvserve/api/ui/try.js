// The "Try" view: one file, several models side by side, with timings.

import { api, describeError, el, formatBytes, formatMs, modelPath, toast } from "./api.js";
import { renderMarkdown } from "./md.js";

const state = {
  file: null,
  url: null,           // object URL of the file, for the preview
  isPdf: false,
  format: "text",
  models: [],
  selected: new Set(),
  cache: new Map(),    // `${model}|${format}` -> result, for the current file
  runs: 0,
};

const $ = (id) => document.getElementById(id);

export function initTry() {
  const input = $("file-input");
  const drop = $("drop");
  input.addEventListener("change", () => input.files[0] && setFile(input.files[0]));
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const file = e.dataTransfer.files[0];
    if (file) setFile(file);
  });
  $("format-toggle").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-format]");
    if (!button || button.dataset.format === state.format) return;
    state.format = button.dataset.format;
    for (const b of $("format-toggle").querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(b === button));
    }
    if (state.file && $("results").children.length) run();
  });
  $("run").addEventListener("click", () => run());
  loadModels();
}

export async function loadModels() {
  try {
    const { data } = await api("/v1/models");
    state.models = data.filter((m) => m.task === "ocr");
    if (!state.selected.size) {
      const first = state.models.find((m) => m.default && m.available) || state.models.find((m) => m.available);
      if (first) state.selected.add(first.id);
    }
    renderModels();
  } catch (err) {
    $("model-list").replaceChildren(el("span", { class: "error" }, describeError(err)));
  }
}

function renderModels() {
  const choice = (m) => {
    const box = el("input", { type: "checkbox", name: "model", value: m.id, disabled: !m.available,
      checked: state.selected.has(m.id) });
    box.addEventListener("change", () => {
      box.checked ? state.selected.add(m.id) : state.selected.delete(m.id);
      updateRunButton();
    });
    const note = !m.available ? oneLine(m.reason) : m.state === "loaded" ? "loaded"
      : m.env_status && m.env_status !== "ready" && m.env_status !== "external" ? `env ${m.env_status.replace("_", " ")}` : "";
    return el("label", { class: `model-choice${m.available ? "" : " unavailable"}`, title: m.reason || m.description || "" },
      box, el("span", { class: "name" }, m.id), note ? el("span", { class: "note" }, note) : null);
  };
  // Available models first; the others folded away, each with its reason on one line.
  const available = state.models.filter((m) => m.available);
  const unavailable = state.models.filter((m) => !m.available);
  $("model-list").replaceChildren(...(available.length ? available.map(choice)
    : [el("span", { class: "muted" }, "No model is available on this server.")]));
  const fold = $("model-unavailable");
  fold.hidden = !unavailable.length;
  setText(fold.querySelector("summary"), `Not available here (${unavailable.length})`);
  fold.querySelector(".model-list").replaceChildren(...unavailable.map(choice));
  updateRunButton();
}

// The first sentence or line of a reason: the full text is the element's title.
function oneLine(text) {
  if (!text) return "";
  const first = text.split(/\n|(?<=\.)\s/)[0].trim();
  return first.length > 90 ? `${first.slice(0, 89)}…` : first;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function updateRunButton() {
  const ready = state.file && state.selected.size;
  $("run").disabled = !ready;
  $("run-hint").textContent = ready
    ? `${state.selected.size} model${state.selected.size > 1 ? "s" : ""}, run side by side.`
    : "Pick a file and at least one model.";
}

function setFile(file) {
  if (state.url) URL.revokeObjectURL(state.url);
  state.file = file;
  state.url = URL.createObjectURL(file);
  state.isPdf = file.type === "application/pdf" || /\.pdf$/i.test(file.name);
  state.cache.clear();
  $("file-info").textContent = `${file.name} · ${formatBytes(file.size)}`;
  $("drop").classList.add("compact");
  const preview = $("preview");
  preview.hidden = false;
  preview.replaceChildren(state.isPdf
    ? el("embed", { src: `${state.url}#page=1`, type: "application/pdf", class: "pdf", title: file.name })
    : el("img", { src: state.url, alt: file.name }));
  $("results").replaceChildren();
  updateRunButton();
}

function showPdfPage(page) {
  const embed = $("preview").querySelector("embed");
  if (!embed) return;
  const clone = embed.cloneNode();  // a new element: the viewer reloads at the page
  clone.src = `${state.url}#page=${page}`;
  embed.replaceWith(clone);
}

function run() {
  if (!state.file || !state.selected.size) return;
  const runId = ++state.runs;
  const models = state.models.filter((m) => state.selected.has(m.id)).map((m) => m.id);
  $("results").replaceChildren(...models.map((id) => card(id)));
  $("results").style.setProperty("--columns", Math.min(models.length, 3));
  Promise.allSettled(models.map((id) => runOne(id, runId))).then(() => loadModels());
}

function card(model) {
  return el("article", { class: "result", dataset: { model, state: "running" } },
    el("header", {},
      el("h3", {}, model),
      el("span", { class: "elapsed" }, "starting…"),
      el("span", { class: "grow" }),
      el("button", { type: "button", class: "ghost view-toggle", hidden: true }, "Source"),
      el("button", { type: "button", class: "ghost copy", disabled: true }, "Copy")),
    el("div", { class: "body" }, el("p", { class: "muted activity" }, "waiting for the server…")),
    el("footer", { class: "timings muted small" }));
}

async function runOne(model, runId) {
  const node = () => [...$("results").children].find((c) => c.dataset.model === model);
  const key = `${model}|${state.format}`;
  const started = performance.now();
  const ticker = setInterval(async () => {
    const c = node();
    if (!c || runId !== state.runs) return clearInterval(ticker);
    c.querySelector(".elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(0)} s`;
    try {  // what the model is doing: building its env, loading, ...
      const m = await api(`/v1/models/${modelPath(model)}`);
      const activity = c.querySelector(".activity");
      if (activity && m.activity && m.activity !== "idle") activity.textContent = `${m.activity}…`;
    } catch { /* the result will tell */ }
  }, 1000);
  let result = state.cache.get(key);
  let roundTrip = null;
  let error = null;
  if (!result) {
    const form = new FormData();
    form.append("file", state.file);
    form.append("model", model);
    form.append("format", state.format);
    try {
      result = await api("/v1/ocr", { method: "POST", body: form });
      roundTrip = performance.now() - started;
      result.roundTrip = roundTrip;
      state.cache.set(key, result);
    } catch (err) {
      error = err;
    }
  }
  clearInterval(ticker);
  const c = node();
  if (!c || runId !== state.runs) return;
  if (error) return showError(c, error);
  showResult(c, result);
}

function showError(c, err) {
  c.dataset.state = "error";
  c.querySelector(".elapsed").textContent = err.code;
  c.querySelector(".body").replaceChildren(
    el("p", { class: "error" }, err.message),
    err.hint ? el("p", { class: "muted small" }, `hint: ${err.hint}`) : null);
}

function showResult(c, result) {
  const markdown = result.format === "markdown";
  const t = result.timing_ms || {};
  c.querySelector(".elapsed").textContent = formatMs(t.total);
  const body = c.querySelector(".body");
  const source = el("pre", { class: "text" }, result.text);
  const parts = [source];
  if (markdown) {
    const rendered = el("div", { class: "markdown" });
    rendered.innerHTML = renderMarkdown(result.text);
    source.hidden = true;
    parts.push(rendered);
    const toggle = c.querySelector(".view-toggle");
    toggle.hidden = false;
    toggle.onclick = () => {
      source.hidden = !source.hidden;
      rendered.hidden = !rendered.hidden;
      toggle.textContent = source.hidden ? "Source" : "Rendered";
    };
  }
  if (result.pages && result.pages.length > 1) {
    const pages = el("div", { class: "pages" }, result.pages.map((p) => el("section", { class: "page" },
      el("button", { type: "button", class: "link", onclick: () => showPdfPage(p.page) }, `Page ${p.page}`),
      el("pre", {}, p.text || "(no text)"))));
    const byPage = el("details", { class: "by-page" }, el("summary", {}, `${result.pages.length} pages`), pages);
    parts.push(byPage);
  }
  if (!result.text.trim()) parts.push(el("p", { class: "muted" }, "(no text found)"));
  body.replaceChildren(...parts);
  const copy = c.querySelector(".copy");
  copy.disabled = false;
  copy.onclick = () => copyText(result.text, copy);
  const bits = [["upload", t.upload], ["env build", t.env_build], ["load", t.load], ["decode", t.decode],
    ["decode", t.decode], ["queue", t.queue], ["inference", t.inference], ["server total", t.total],
    ["round trip", result.roundTrip]].filter(([, v]) => v != null).map(([k, v]) => `${k} ${formatMs(v)}`);
  c.querySelector(".timings").textContent = bits.join(" · ");
  c.dataset.state = "done";
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { class: "offscreen" }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
  toast("Copied to the clipboard", "info");
}
