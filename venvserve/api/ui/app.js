// Entry point: the views (#try, #status, #jobs), the API key, the connection badge.

import { api, getKey, onAuthNeeded, setKey } from "./api.js";
import { initJobs, showJobs } from "./jobs.js";
import { initStatus, refresh, showStatus } from "./status.js";
import { initTry, loadModels } from "./try.js";

const $ = (id) => document.getElementById(id);

function route() {
  const view = { "#status": "status", "#jobs": "jobs" }[location.hash] || "try";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    link.setAttribute("aria-current", link.dataset.view === view ? "page" : "false");
  }
  showStatus(view === "status");
  showJobs(view === "jobs");
  if (view === "try") loadModels();
}

function connection(ok, err) {
  const badge = $("conn");
  if (ok) {
    badge.textContent = "● live";
    badge.dataset.state = "ok";
  } else if (err && (err.status === 401 || err.status === 403)) {
    badge.textContent = "● key needed";
    badge.dataset.state = "auth";
  } else {
    badge.textContent = "● offline";
    badge.dataset.state = "down";
  }
}

function initKey() {
  const panel = $("key-panel");
  $("key-button").addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) $("key-input").focus();
  });
  panel.addEventListener("submit", (e) => {
    e.preventDefault();
    setKey($("key-input").value.trim());
    $("key-input").value = "";
    panel.hidden = true;
    $("key-button").textContent = getKey() ? "API key ✓" : "API key";
    $("conn").dataset.state = "";
    route();
    ping();
  });
  $("key-clear").addEventListener("click", () => {
    setKey("");
    panel.hidden = true;
    $("key-button").textContent = "API key";
    route();
  });
  onAuthNeeded((err) => {
    $("key-message").textContent = err.status === 403
      ? `${err.message}: enter the admin key.`
      : `${err.message}: this server needs a key. It is kept in this browser's local storage.`;
    panel.hidden = false;
    connection(false, err);
  });
  $("key-button").textContent = getKey() ? "API key ✓" : "API key";
}

// /healthz is open; with a key problem the badge says so until a key works.
async function ping() {
  try {
    const res = await fetch("/healthz");
    if (!res.ok || $("conn").dataset.state !== "auth") return connection(res.ok);
    await api("/v1/models");
    connection(true);
  } catch (err) {
    connection(false, err);
  }
}

initKey();
initTry();
initJobs();
initStatus(connection);
window.addEventListener("hashchange", route);
route();
ping();
setInterval(ping, 5000);
window.venvserve = { refresh };
