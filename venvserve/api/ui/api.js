// The server's HTTP API, with the bearer key (if any) from local storage.

const KEY = "venvserve.key";

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.hint = error.hint || null;
  }
}

const authListeners = [];

export function onAuthNeeded(fn) { authListeners.push(fn); }
export function getKey() { return localStorage.getItem(KEY) || ""; }
export function setKey(key) { key ? localStorage.setItem(KEY, key) : localStorage.removeItem(KEY); }

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(res) {
  let error = { message: `HTTP ${res.status} ${res.statusText}` };
  try {
    const body = await res.json();
    if (body && body.error) error = body.error;
  } catch { /* not JSON */ }
  const err = new ApiError(res.status, error);
  if (res.status === 401 || res.status === 403) authListeners.forEach((fn) => fn(err));
  return err;
}

export async function api(path, { method = "GET", body, json, signal } = {}) {
  const init = { method, signal, headers: headers() };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers = headers({ "Content-Type": "application/json" });
  } else if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

// Server-sent events over fetch (EventSource cannot send an Authorization header).
// Calls onEvent({event, data}) per event; resolves when the stream ends or `signal` aborts.
export async function stream(path, onEvent, signal) {
  const res = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of raw.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent({ event, data: data.join("\n") });
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  }
}

export function formatBytes(n) {
  if (n == null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatMs(ms) {
  if (ms == null) return "–";
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

let toastTimer = null;
export function toast(message, kind = "error") {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 3000);
}

export function describeError(err) {
  return err.hint ? `${err.message} — ${err.hint}` : err.message;
}

// A model id may contain "/" (deepseek-ai/DeepSeek-OCR): encode each segment.
export function modelPath(id) { return id.split("/").map(encodeURIComponent).join("/"); }
