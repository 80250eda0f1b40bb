// The public API, called with the workspace's key from the same origin (the gateway serves both).

/** An error answer of the API: `{error, message}` with its HTTP status. */
export class ApiError extends Error {
  constructor(status, error, message) {
    super(message);
    this.status = status;
    this.error = error;
  }
}

async function failure(response) {
  let error = "error";
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    error = body.error || error;
    message = body.message || body.detail || message;
  } catch {
    /* not JSON: keep the status line */
  }
  if (response.status === 429) {
    const wait = response.headers.get("retry-after");
    if (wait) message += ` (retry after ${wait}s)`;
  }
  return new ApiError(response.status, error, message);
}

/** A client bound to one workspace and key. */
export class Api {
  constructor(workspaceId, apiKey, base = "") {
    this.base = base;
    this.headers = { "x-workspace-id": workspaceId, "x-api-key": apiKey };
  }

  async request(method, path, { body, query, accept = "application/json", signal } = {}) {
    const url = new URL(`${this.base}/v1${path}`, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const headers = { ...this.headers, accept };
    let payload = body;
    if (body && !(body instanceof FormData)) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body: payload, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "unreachable", `cannot reach the API (${err.message})`);
    }
    if (!response.ok) throw await failure(response);
    return response;
  }

  async json(method, path, options) {
    const response = await this.request(method, path, options);
    const text = await response.text();
    return text ? JSON.parse(text) : {};
  }

  agents() { return this.json("GET", "/agents"); }
  createAgent(agent) { return this.json("POST", "/agents", { body: agent }); }
  batches() { return this.json("GET", "/batch-calls", { query: { limit: 20 } }); }
  batch(id) { return this.json("GET", `/batch-calls/${encodeURIComponent(id)}`); }
  status(id) { return this.json("GET", `/batch-calls/${encodeURIComponent(id)}/status`); }
  calls(id, status, page, limit = 20) {
    return this.json("GET", `/batch-calls/${encodeURIComponent(id)}/calls`, { query: { status, page, limit } });
  }
  call(id, jobId) {
    return this.json("GET", `/batch-calls/${encodeURIComponent(id)}/calls/${encodeURIComponent(jobId)}`);
  }
  validate(form) { return this.json("POST", "/batch-calls/validate", { body: form }); }
  start(form) { return this.json("POST", "/batch-calls", { body: form }); }
  cancel(id) { return this.json("DELETE", `/batch-calls/${encodeURIComponent(id)}`); }
  pause(id) { return this.json("POST", `/batch-calls/${encodeURIComponent(id)}/pause`); }
  resume(id) { return this.json("POST", `/batch-calls/${encodeURIComponent(id)}/resume`); }
  async template(agentId) {
    const response = await this.request("GET", "/batch-calls/template", { query: { agentId }, accept: "text/csv" });
    return response.blob();
  }
  async exportCsv(id) {
    const response = await this.request("GET", `/batch-calls/${encodeURIComponent(id)}/export`, { accept: "text/csv" });
    return response.blob();
  }
  /** The batch's live event stream (a fetch Response; read it with `readEvents`). */
  events(id, signal) {
    return this.request("GET", `/batch-calls/${encodeURIComponent(id)}/events`, { accept: "text/event-stream", signal });
  }
}
