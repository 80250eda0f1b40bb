// The dashboard: connect with a workspace key, pick or create an agent, validate and start a CSV,
// follow a batch live (SSE, with polling as the safety net), browse its calls, control and export it.

import { Api, ApiError } from "./api.js";
import { OutcomeChart } from "./chart.js";
import { readEvents } from "./sse.js";

const $ = (selector) => document.querySelector(selector);
const STATES = ["waiting", "active", "completed", "failed", "cancelled"];
const FINAL = new Set(["completed", "cancelled", "failed"]);
const POLL_MS = 3000; // 20 status reads a minute: well inside the smallest plan's 60 requests a minute
const CALLS_REFRESH_MS = 4000;

const state = {
  api: null,
  agents: [],
  batchId: null,
  follow: null, // AbortController of the current follow
  lastProgress: null,
  callsStatus: "all",
  callsPage: 1,
  callsLoadedAt: 0,
  callsTimer: null,
  validated: null,
};
const chart = new OutcomeChart($("#chart"));

// --- small helpers -----------------------------------------------------------------------------------

function toast(message, ok = false) {
  const box = $("#toast");
  box.textContent = message;
  box.className = ok ? "toast ok" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, ok ? 3000 : 8000);
}

function explain(err) {
  if (err instanceof ApiError) return err.status ? `${err.message} (${err.error}, HTTP ${err.status})` : err.message;
  return String(err && err.message ? err.message : err);
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

function when(ms) {
  if (!ms) return "—";
  const date = typeof ms === "number" ? new Date(ms) : new Date(String(ms));
  return Number.isNaN(date.getTime()) ? String(ms) : date.toLocaleTimeString();
}

function seconds(value) {
  return value === null || value === undefined || value === "" ? "—" : `${Number(value).toFixed(1)}s`;
}

function section(body, ...keys) {
  for (const key of keys) if (body && typeof body[key] === "object" && body[key] !== null) return body[key];
  return body || {};
}

/** Counts from any shape: nested `progress`, flat `/status`, or a progress event. Null if none. */
export function progressOf(body, batchId) {
  if (!body || typeof body !== "object") return null;
  const counts = section(body, "progress", "counts", "summary");
  if (!["waiting", "active", "completed", "failed"].some((k) => k in counts)) return null;
  const status = body.status || body.batchStatus || counts.status || "processing";
  const out = {
    batchId: body.id || body.batchId || batchId,
    status,
    total: Number(body.totalCalls || counts.total || counts.totalCalls || 0),
    isComplete: Boolean(body.isComplete ?? counts.isComplete),
  };
  for (const key of STATES) out[key] = Number(counts[key] || 0);
  out.finished = out.isComplete || FINAL.has(status);
  return out;
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// --- connection ----------------------------------------------------------------------------------------

async function connect(workspace, key) {
  const api = new Api(workspace, key);
  $("#connection-state").textContent = "Connecting…";
  try {
    const body = await api.agents();
    state.api = api;
    sessionStorage.setItem("bc.workspace", workspace);
    sessionStorage.setItem("bc.apiKey", key);
    $("#connection-state").textContent = `Connected to ${workspace}`;
    $("#workspace-view").hidden = false;
    $("#disconnect").hidden = false;
    renderAgents(body.agents || body.items || []);
    await loadBatches();
    const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("batch");
    if (fromHash) selectBatch(fromHash);
  } catch (err) {
    state.api = null;
    $("#connection-state").textContent = "Not connected";
    toast(explain(err));
  }
}

function disconnect() {
  sessionStorage.removeItem("bc.workspace");
  sessionStorage.removeItem("bc.apiKey");
  stopFollowing();
  state.api = null;
  $("#workspace-view").hidden = true;
  $("#disconnect").hidden = true;
  $("#connection-state").textContent = "Not connected";
}

// --- agents --------------------------------------------------------------------------------------------

function agentId(agent) { return agent.agentId || agent.id; }

function renderAgents(agents, selected) {
  state.agents = agents;
  const select = $("#agent-select");
  select.replaceChildren(h("option", { value: "" }, agents.length ? "— pick an agent —" : "— no agents yet —"));
  for (const agent of agents) select.append(h("option", { value: agentId(agent) }, `${agent.name} (${agentId(agent)})`));
  if (selected) select.value = selected;
  else if (agents.length === 1) select.value = agentId(agents[0]);
  showAgentVariables();
}

function currentAgent() {
  return state.agents.find((agent) => agentId(agent) === $("#agent-select").value) || null;
}

function showAgentVariables() {
  const agent = currentAgent();
  const variables = agent ? agent.variables || [] : [];
  $("#agent-variables").textContent = agent
    ? (variables.length ? `Variables: ${variables.map((v) => `{${v}}`).join(", ")}` : "This agent uses no variables.")
    : "";
  updateStartButton();
  if ($("#csv-file").files.length) validateFile();
}

async function createAgent(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const agent = { name: form.get("name"), prompt: form.get("prompt") };
  if (form.get("callerId")) agent.callerId = form.get("callerId");
  try {
    const created = await state.api.createAgent(agent);
    const body = await state.api.agents();
    renderAgents(body.agents || body.items || [], agentId(created));
    event.target.reset();
    event.target.hidden = true;
    toast(`Agent ${created.name || agentId(created)} created`, true);
  } catch (err) {
    toast(explain(err));
  }
}

// --- upload and validation ----------------------------------------------------------------------------

function uploadForm(withOptions) {
  const form = new FormData();
  form.append("file", $("#csv-file").files[0]);
  const agent = $("#agent-select").value;
  if (agent) form.append("agentId", agent);
  if (!withOptions) return form;
  const at = $("#scheduled-at").value;
  if (at) form.append("scheduledAt", `${at.length === 16 ? `${at}:00` : at}Z`);
  const days = $("#window-days").value;
  const start = $("#window-start").value;
  const end = $("#window-end").value;
  const zone = $("#window-zone").value.trim();
  if (days || start || end || zone) {
    const hours = {};
    if (days) hours.days = days.split(",").map(Number);
    if (start) hours.start = start;
    if (end) hours.end = end;
    if (zone) hours.timezone = zone;
    form.append("callingWindow", JSON.stringify(hours));
  }
  const attempts = $("#max-attempts").value;
  if (attempts || $("#retry-voicemail").checked) {
    const policy = { retryVoicemail: $("#retry-voicemail").checked };
    if (attempts) policy.maxAttempts = Number(attempts);
    form.append("retryPolicy", JSON.stringify(policy));
  }
  if ($("#dry-run").checked) form.append("dryRun", "true");
  return form;
}

/** The agent's variables a column (or an agent default) provides, and those nothing provides. */
export function coverage(agent, columns) {
  const provided = new Set([...(columns || []), ...Object.keys((agent && agent.defaults) || {})]);
  const variables = (agent && agent.variables) || [];
  return { covered: variables.filter((v) => provided.has(v)), missing: variables.filter((v) => !provided.has(v)) };
}

function renderValidation(body) {
  // Ingest's answer: {valid, totalRows, counts: {valid, invalid, duplicate, doNotCall}, columns, variables,
  // errors: [{row, line, column, code, message, value}], preview: [{row, phone_number, variables}], warnings}.
  const box = $("#validation");
  const counts = body.counts || {};
  const facts = [
    ["rows", body.totalRows],
    ["valid", counts.valid],
    ["invalid", counts.invalid],
    ["duplicates", counts.duplicate],
    ["do-not-call", counts.doNotCall],
  ].filter(([, value]) => typeof value === "number");
  const parts = [h("div", { class: "summary", "data-testid": "validation-summary" },
    ...facts.map(([label, value]) => h("div", { "data-count": label }, h("b", {}, String(value)), label)))];
  if (body.valid === false) parts.push(h("p", { class: "err" }, "No row has a callable number: this file cannot start a batch."));
  const errors = body.errors || [];
  if (errors.length) {
    const rows = errors.map((e) => h("tr", {},
      h("td", {}, String(e.line ?? "—")),
      h("td", {}, String(e.column ?? "")),
      h("td", { class: "err" }, String(e.code ?? "")),
      h("td", {}, String(e.message ?? "")),
      h("td", {}, String(e.value ?? ""))));
    parts.push(h("table", { "data-testid": "validation-errors" },
      h("thead", {}, h("tr", {}, ...["line", "column", "code", "message", "value"].map((c) => h("th", {}, c)))),
      h("tbody", {}, ...rows)));
    const skipped = (counts.invalid || 0) + (counts.duplicate || 0) + (counts.doNotCall || 0);
    if (skipped > errors.length) parts.push(h("p", { class: "hint" }, `The first ${errors.length} of ${skipped} rows that would be skipped.`));
  } else {
    parts.push(h("p", { class: "ok-text" }, "No row errors."));
  }
  const agent = currentAgent();
  if (agent) {
    const { covered, missing } = coverage(agent, body.variables || body.columns);
    if (covered.length) parts.push(h("p", { class: "ok-text", "data-testid": "variables-covered" }, `Agent variables covered: ${covered.join(", ")}`));
    if (missing.length) parts.push(h("p", { class: "warn", "data-testid": "variables-missing" }, `Agent variables with no column: ${missing.join(", ")}`));
  }
  for (const warning of body.warnings || []) parts.push(h("p", { class: "warn" }, `⚠ ${warning}`));
  const preview = (body.preview || []).filter((row) => row && typeof row === "object");
  if (preview.length) {
    const names = Object.keys(preview[0].variables || {}).slice(0, 6);
    const columns = ["row", "phone_number", ...names];
    parts.push(h("table", { "data-testid": "validation-preview" },
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))),
      h("tbody", {}, ...preview.slice(0, 5).map((row) => h("tr", {},
        h("td", {}, String(row.row ?? "")), h("td", {}, row.phone_number || ""),
        ...names.map((n) => h("td", {}, String((row.variables || {})[n] ?? ""))))))));
  }
  box.replaceChildren(...parts);
  box.hidden = false;
}

async function validateFile() {
  if (!$("#csv-file").files.length || !state.api) return;
  state.validated = null;
  updateStartButton();
  $("#validation").hidden = false;
  $("#validation").textContent = "Checking…";
  try {
    const body = await state.api.validate(uploadForm(false));
    state.validated = body;
    renderValidation(body);
  } catch (err) {
    $("#validation").replaceChildren(h("p", { class: "err", "data-testid": "validation-failed" }, explain(err)));
  }
  updateStartButton();
}

function updateStartButton() {
  const ready = Boolean($("#agent-select").value && $("#csv-file").files.length && state.validated && state.validated.valid !== false);
  $("#start-batch").disabled = !ready;
  $("#start-hint").textContent = ready ? "Ready." : "Pick an agent and a CSV.";
}

async function startBatch() {
  $("#start-batch").disabled = true;
  $("#start-hint").textContent = "Uploading…";
  try {
    const body = await state.api.start(uploadForm(true));
    toast(`${body.message || "Batch started"}: ${body.batchId} (${body.totalCalls} calls)`, true);
    remember(body.batchId);
    await loadBatches();
    selectBatch(body.batchId);
  } catch (err) {
    toast(explain(err));
  }
  updateStartButton();
}

// --- batches -------------------------------------------------------------------------------------------

function remembered() {
  try { return JSON.parse(sessionStorage.getItem("bc.batches") || "[]"); } catch { return []; }
}

function remember(batchId) {
  const ids = [batchId, ...remembered().filter((id) => id !== batchId)].slice(0, 20);
  sessionStorage.setItem("bc.batches", JSON.stringify(ids));
}

async function loadBatches() {
  let batches = [];
  try {
    const body = await state.api.batches();
    batches = (body.batches || body.items || body.data || []).map((b) => ({ id: b.id || b.batchId, label: `${b.id || b.batchId} · ${b.status}${b.name ? ` · ${b.name}` : ""}` }));
  } catch {
    batches = remembered().map((id) => ({ id, label: id })); // no list endpoint: the batches started here
  }
  const select = $("#batch-select");
  select.replaceChildren(h("option", { value: "" }, batches.length ? "— pick a batch —" : "— none yet —"));
  for (const batch of batches) select.append(h("option", { value: batch.id }, batch.label));
  if (state.batchId) {
    if (![...select.options].some((o) => o.value === state.batchId)) select.append(h("option", { value: state.batchId }, state.batchId));
    select.value = state.batchId;
  }
}

function stopFollowing() {
  if (state.follow) state.follow.abort();
  state.follow = null;
  clearTimeout(state.callsTimer);
}

function selectBatch(batchId) {
  if (!batchId) return;
  stopFollowing();
  state.batchId = batchId;
  state.lastProgress = null;
  state.callsPage = 1;
  window.history.replaceState(null, "", `#batch=${encodeURIComponent(batchId)}`);
  const select = $("#batch-select");
  if (![...select.options].some((o) => o.value === batchId)) select.append(h("option", { value: batchId }, batchId));
  select.value = batchId;
  $("#batch-card").hidden = false;
  $("#batch-title").textContent = batchId;
  $("#call-detail").hidden = true;
  chart.reset();
  follow(batchId);
}

function done(p) { return p.completed + p.failed + p.cancelled; }

function renderProgress(p) {
  // Stream events and status reads can arrive out of order: never show progress going back.
  const last = state.lastProgress;
  if (last && last.batchId === p.batchId && !p.finished && done(p) < done(last)) return;
  state.lastProgress = p;
  const pill = $("#batch-status");
  pill.textContent = p.status;
  pill.className = `pill ${p.status}`;
  $("#count-total").textContent = p.total;
  for (const key of STATES) $(`#count-${key}`).textContent = p[key];
  const total = Math.max(p.total, 1);
  for (const key of ["completed", "failed", "cancelled", "active"]) $(`#seg-${key}`).style.width = `${(100 * p[key]) / total}%`;
  $("#pause-batch").disabled = p.finished || p.status === "paused";
  $("#resume-batch").disabled = p.finished || p.status !== "paused";
  $("#cancel-batch").disabled = p.finished;
  document.body.dataset.batchStatus = p.status;
  chart.add(p);
  scheduleCalls();
}

async function follow(batchId) {
  const control = new AbortController();
  state.follow = control;
  const alive = () => !control.signal.aborted && state.batchId === batchId;
  let stale = true;
  let lastRead = 0;
  const refresh = async () => {
    lastRead = Date.now();
    stale = false;
    const p = progressOf(await state.api.status(batchId), batchId);
    if (p && alive()) renderProgress(p);
    return p;
  };
  // A batch that was just accepted can take a moment to reach the status read model: wait out its 404s.
  const appearBy = Date.now() + 60000;
  for (;;) {
    try {
      const first = await refresh();
      if (!first || first.finished) { if (alive()) $("#stream-state").textContent = "final"; if (first) loadCalls(); return; }
      break;
    } catch (err) {
      if (!alive()) return;
      if (err instanceof ApiError && (err.status === 404 || err.status === 429) && Date.now() < appearBy) {
        $("#stream-state").textContent = "waiting for the batch…";
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      toast(explain(err));
      return;
    }
  }
  // The stream, in the background; progress events update at once, other events mark the counts stale.
  let streaming = false;
  (async () => {
    try {
      const response = await state.api.events(batchId, control.signal);
      streaming = true;
      $("#stream-state").textContent = "live";
      await readEvents(response, (message) => {
        if (!alive()) return;
        let data = null;
        try { data = JSON.parse(message.data); } catch { /* not JSON */ }
        const kind = (data && (data.type || data.event)) || message.event;
        const p = progressOf(data && data.data && !progressOf(data) ? data.data : data, batchId);
        if (p) {
          if (!p.total && state.lastProgress) p.total = state.lastProgress.total;
          renderProgress(p);
        } else stale = true;
        if (kind === "end" || /^batch\.(completed|cancelled|failed)$/.test(kind)) stale = true;
      });
    } catch (err) {
      if (err.name === "AbortError") return;
    }
    streaming = false;
    if (alive() && !(state.lastProgress && state.lastProgress.finished)) $("#stream-state").textContent = "polling";
  })();
  // Polling: every POLL_MS when the stream is down or something changed; a slow safety net otherwise.
  while (alive()) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (!alive()) return;
    const since = Date.now() - lastRead;
    const due = streaming ? (stale && since >= POLL_MS) || since >= 5 * POLL_MS : since >= POLL_MS;
    if (!due) continue;
    try {
      const p = await refresh();
      if (p && p.finished) {
        $("#stream-state").textContent = "final";
        await loadCalls();
        control.abort();
        loadBatches();
        return;
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) lastRead = Date.now() + 5000;
      else toast(explain(err));
    }
  }
}

async function command(action) {
  const id = state.batchId;
  if (!id) return;
  if (action === "cancel" && !window.confirm(`Cancel ${id}? Waiting calls are dropped; a cancelled batch cannot restart.`)) return;
  try {
    const body = await state.api[action](id);
    toast(body.message || `${action}: ${body.status || "ok"}`, true);
    const p = progressOf(await state.api.status(id), id);
    if (p) renderProgress(p);
    if (p && p.finished) { stopFollowing(); $("#stream-state").textContent = "final"; loadCalls(); }
  } catch (err) {
    toast(explain(err));
  }
}

async function exportBatch() {
  try {
    download(await state.api.exportCsv(state.batchId), `${state.batchId}-results.csv`);
  } catch (err) {
    toast(explain(err));
  }
}

// --- calls ---------------------------------------------------------------------------------------------

function scheduleCalls() {
  if (state.callsTimer) return;
  const wait = Math.max(0, CALLS_REFRESH_MS - (Date.now() - state.callsLoadedAt));
  state.callsTimer = setTimeout(() => { state.callsTimer = null; loadCalls(); }, wait);
}

async function loadCalls() {
  const id = state.batchId;
  if (!id) return;
  // One request at a time: on a slow server, overlapping reads would only pile up. A change asked for
  // meanwhile (new counts, another filter or page) is read right after the current one.
  if (state.callsInFlight) { state.callsAgain = true; return; }
  state.callsInFlight = true;
  state.callsAgain = false;
  const wanted = { id, status: state.callsStatus, page: state.callsPage };
  state.callsLoadedAt = Date.now();
  try {
    const body = await state.api.calls(id, wanted.status, wanted.page);
    const current = id === state.batchId && wanted.status === state.callsStatus && wanted.page === state.callsPage;
    if (current) renderCalls(body);
    else state.callsAgain = true;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 429)) toast(explain(err));
  } finally {
    state.callsInFlight = false;
    if (state.callsAgain && state.batchId) loadCalls();
  }
}

function renderCalls(body) {
  const rows = (body.calls || []).map((call) => {
    const row = h("tr", { "data-job": call.jobId },
      h("td", {}, call.jobId),
      h("td", {}, h("span", { class: `pill ${call.status}` }, call.status)),
      h("td", {}, call.phone_number || ""),
      h("td", {}, when(call.startTime)),
      h("td", {}, seconds(call.duration)),
      h("td", {}, String(call.attempts ?? "")),
      h("td", { class: "err" }, call.error || ""));
    row.addEventListener("click", () => showCall(call.jobId));
    return row;
  });
  $("#calls-body").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colSpan: 7, class: "hint" }, "No calls here."))]));
  const page = body.pagination || {};
  $("#page-info").textContent = `page ${page.page || 1} of ${page.totalPages || 1} · ${page.total ?? rows.length} calls`;
  $("#prev-page").disabled = !page.hasPrev;
  $("#next-page").disabled = !page.hasNext;
}

async function showCall(jobId) {
  const box = $("#call-detail");
  const seq = (state.callSeq = (state.callSeq || 0) + 1);
  box.hidden = false;
  box.replaceChildren(h("p", { class: "hint" }, `Loading ${jobId}…`));
  try {
    const call = await state.api.call(state.batchId, jobId);
    if (seq !== state.callSeq) return;
    // The attempt list is `history` (in call lists `attempts` is a count).
    const attempts = Array.isArray(call.history) ? call.history : Array.isArray(call.attempts) ? call.attempts : [];
    const metadata = Object.entries(call.metadata || {});
    box.replaceChildren(
      h("h3", {}, `${jobId} · `, h("span", { class: `pill ${call.status}` }, call.status)),
      h("p", { class: "hint" }, `${call.phone_number || ""} ${call.error ? `· ${call.error}` : ""}`),
      metadata.length ? h("p", { class: "hint" }, metadata.map(([k, v]) => `${k}: ${v}`).join(" · ")) : "",
      h("table", { "data-testid": "attempts-table" },
        h("thead", {}, h("tr", {}, ...["#", "attempt", "outcome", "started", "ended", "duration", "billable", "code"].map((c) => h("th", {}, c)))),
        h("tbody", {}, ...(attempts.length ? attempts.map((a) => h("tr", {},
          h("td", {}, String(a.attempt ?? a.attemptNumber ?? "")),
          h("td", {}, a.attemptId || a.attempt_id || ""),
          h("td", {}, a.outcome || (a.endTime ? "" : "in progress")),
          h("td", {}, when(a.startTime || a.startedAt)),
          h("td", {}, when(a.endTime || a.endedAt)),
          h("td", {}, seconds(a.duration ?? a.durationSeconds)),
          h("td", {}, a.billable === undefined ? "" : a.billable ? "yes" : "no"),
          h("td", {}, [a.providerCode, a.providerReason].filter(Boolean).join(" ")))) : [h("tr", {}, h("td", { colSpan: 8, class: "hint" }, "No attempt yet."))]))));
    box.hidden = false;
  } catch (err) {
    toast(explain(err));
  }
}

// --- wiring --------------------------------------------------------------------------------------------

function wire() {
  $("#connect-form").addEventListener("submit", (event) => {
    event.preventDefault();
    connect($("#workspace").value.trim(), $("#api-key").value.trim());
  });
  $("#disconnect").addEventListener("click", disconnect);
  $("#agent-select").addEventListener("change", showAgentVariables);
  $("#toggle-agent-form").addEventListener("click", () => { $("#agent-form").hidden = !$("#agent-form").hidden; });
  $("#agent-form").addEventListener("submit", createAgent);
  $("#csv-file").addEventListener("change", validateFile);
  $("#start-batch").addEventListener("click", startBatch);
  $("#download-template").addEventListener("click", async () => {
    try { download(await state.api.template($("#agent-select").value || undefined), "batch-calls-template.csv"); } catch (err) { toast(explain(err)); }
  });
  $("#batch-select").addEventListener("change", (event) => selectBatch(event.target.value));
  $("#refresh-batches").addEventListener("click", loadBatches);
  $("#pause-batch").addEventListener("click", () => command("pause"));
  $("#resume-batch").addEventListener("click", () => command("resume"));
  $("#cancel-batch").addEventListener("click", () => command("cancel"));
  $("#export-batch").addEventListener("click", exportBatch);
  $("#call-filters").addEventListener("click", (event) => {
    const status = event.target.dataset && event.target.dataset.status;
    if (!status) return;
    for (const tab of $("#call-filters").querySelectorAll("button")) tab.setAttribute("aria-selected", String(tab === event.target));
    state.callsStatus = status;
    state.callsPage = 1;
    loadCalls();
  });
  $("#prev-page").addEventListener("click", () => { state.callsPage = Math.max(1, state.callsPage - 1); loadCalls(); });
  $("#next-page").addEventListener("click", () => { state.callsPage += 1; loadCalls(); });
  chart.draw();
  const workspace = sessionStorage.getItem("bc.workspace");
  const key = sessionStorage.getItem("bc.apiKey");
  if (workspace && key) {
    $("#workspace").value = workspace;
    $("#api-key").value = key;
    connect(workspace, key);
  }
}

wire();
