// The runs API from the browser: the bearer token lives in this tab's session storage only.
const KEY = "runs.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value.trim());
  else sessionStorage.removeItem(KEY);
}

// `/#token=<t>` (the link `make run` prints): keep the token, then drop it from the address bar.
export function takeTokenFromHash() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search + "#/runs");
}

export class ApiError extends Error {
  constructor(status, body) {
    const details = (body.details || []).map((d) => `${d.field || "-"}: ${d.message}`);
    super([body.message || `HTTP ${status}`, ...details].join("; "));
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, { query, body } = {}) {
  const url = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, item);
    }
  }
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (!response.ok) throw new ApiError(response.status, data || {});
  return data;
}
