// The operator page: a thin client of the service's own API (/v1/*). Everything shown comes from
// fetched JSON and is written with textContent, never as HTML: a fetched page cannot script this one.
"use strict";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 3000;

function headers() {
  const key = sessionStorage.getItem("browser-service-key");
  const h = { "Content-Type": "application/json" };
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers() });
  $("auth-banner").hidden = response.status !== 401;
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { status: response.status, body };
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(list, pairs) {
  list.replaceChildren();
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value === null || value === undefined ? "–" : String(value);
    list.append(dt, dd);
  }
}

function showResult(response) {
  $("result").hidden = false;
  const outcome = $("outcome");
  outcome.className = response.ok ? "badge ok" : "badge failed";
  outcome.textContent = response.ok
    ? `ok · ${response.engine ?? ""} · ${response.source}${response.stale ? " (stale)" : ""} · HTTP ${response.status_code ?? "–"} · ${response.duration_ms ?? "–"} ms`
    : `failed · ${response.error?.kind ?? "error"}`;
  // A failure, or the live failure behind a stale copy served instead.
  const error = response.error ?? response.live_error;
  $("error").hidden = !error;
  if (error) {
    $("error-kind").textContent = response.error ? error.kind : `live fetch failed: ${error.kind}`;
    $("error-retry").textContent = error.retryable
      ? `retryable${error.retry_after_s ? ` after ${error.retry_after_s} s` : ""}` : "not retryable";
    $("error-message").textContent = error.message;
  }
  const body = $("attempts").tBodies[0];
  body.replaceChildren();
  (response.attempts ?? []).forEach((attempt, i) => {
    const row = body.insertRow();
    cell(row, i + 1); cell(row, attempt.engine); cell(row, attempt.outcome);
    cell(row, attempt.status_code); cell(row, attempt.duration_ms); cell(row, attempt.detail);
  });
  $("warnings").textContent = (response.warnings ?? []).join("\n");
  $("markdown").textContent = response.markdown ?? response.text ?? "";
  $("trace-id").textContent = response.trace_id ?? "";
  showTrace(response.trace_id);
}

async function showTrace(traceId) {
  if (!traceId) { $("trace").textContent = ""; return; }
  const { status, body } = await api(`/v1/traces/${encodeURIComponent(traceId)}`);
  $("trace").textContent = status === 200 ? JSON.stringify(body, null, 2) : "(no trace recorded for this request)";
}

async function onFetch(event) {
  event.preventDefault();
  const request = { url: $("url").value, render: $("render").value, formats: ["markdown"] };
  if ($("fresh").checked) request.max_age_s = 0;
  $("go").disabled = true;
  $("outcome").textContent = "fetching…";
  try {
    const { body } = await api("/v1/fetch", { method: "POST", body: JSON.stringify(request) });
    if (body && typeof body.ok === "boolean") showResult(body);
    else $("outcome").textContent = `no answer (${JSON.stringify(body)})`;
  } catch (e) {
    $("outcome").textContent = `the service did not answer: ${e}`;
  } finally {
    $("go").disabled = false;
    refresh();
  }
}

async function decide(id, decision) {
  await api(`/v1/quarantine/${encodeURIComponent(id)}/${decision}`, { method: "POST" });
  refresh();
}

async function refresh() {
  let health, hosts, quarantine;
  try {
    [health, hosts, quarantine] = await Promise.all([api("/v1/health"), api("/v1/hosts"), api("/v1/quarantine")]);
  } catch (e) {  // the service is down or restarting: say so, and keep polling
    const badge = $("status-badge");
    badge.textContent = "not answering"; badge.className = "badge unavailable";
    return;
  }
  if (health.body && health.body.pool) {
    const h = health.body, pool = h.pool, cache = h.cache;
    const badge = $("status-badge");
    badge.textContent = h.status; badge.className = `badge ${h.status}`;
    fill($("pool"), [
      ["state", pool.state], ["slots in use", `${pool.in_use} / ${pool.size}`],
      ["queued", `${pool.queued} / ${pool.queue_limit}`], ["browser", pool.browser_connected ? pool.browser_version : "not running"],
      ["launches", pool.launches], ["restarts", pool.restarts], ["recycles", pool.recycles], ["pages served", pool.pages_served],
    ]);
    fill($("cache"), [
      ["backend", cache.backend], ["entries", cache.entries], ["size", cache.size_bytes === null ? null : `${(cache.size_bytes / 1048576).toFixed(1)} MB`],
      ["quarantined", h.quarantined], ["uptime", `${Math.round(h.uptime_s)} s`],
    ]);
  }
  const hostRows = $("hosts").tBodies[0];
  hostRows.replaceChildren();
  for (const host of Array.isArray(hosts.body) ? hosts.body : []) {
    const row = hostRows.insertRow();
    cell(row, host.host); cell(row, host.state, `badge ${host.state}`); cell(row, host.circuit);
    cell(row, `${host.failures} / ${host.calls}`); cell(row, host.summary);
  }
  const items = quarantine.body && Array.isArray(quarantine.body.items) ? quarantine.body.items : [];
  $("quarantine-total").textContent = quarantine.body ? `(${quarantine.body.total})` : "";
  const quarantineRows = $("quarantine").tBodies[0];
  quarantineRows.replaceChildren();
  for (const item of items) {
    const row = quarantineRows.insertRow();
    row.dataset.id = item.id;
    cell(row, item.url); cell(row, item.findings.join("; ")); cell(row, item.excerpt);
    const actions = row.insertCell();
    for (const decision of ["approve", "reject"]) {
      const button = document.createElement("button");
      button.textContent = decision;
      button.className = decision;
      button.addEventListener("click", () => decide(item.id, decision));
      actions.append(button);
    }
  }
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = sessionStorage.getItem("browser-service-key") ?? "";
  $("key").addEventListener("change", () => { sessionStorage.setItem("browser-service-key", $("key").value); refresh(); });
  $("fetch-form").addEventListener("submit", onFetch);
  refresh();
  setInterval(refresh, REFRESH_MS);
});
