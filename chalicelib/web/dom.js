// Tiny DOM helpers: elements are built with text nodes only (never innerHTML from data).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const TERMINAL = new Set(["completed", "completed-with-errors", "failed", "timed-out",
  "exhausted", "cancelled"]);
export const RUN_STATUSES = ["pending", "running", "completed", "completed-with-errors",
  "failed", "timed-out", "exhausted", "cancelled"];
export const TRIGGER_TYPES = ["manual", "webhook", "cron", "automation-failure"];

export function badge(status) {
  return h("span", { class: `badge s-${status}` }, status);
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${value} ms`;
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function runLink(id, label) {
  return h("a", { href: `#/runs/${encodeURIComponent(id)}` }, label || id.slice(0, 8));
}

export function pretty(value) {
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  box.className = `toast ${kind}`;
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.textContent = ""; box.className = ""; }, 8000);
}

// What a running run waits for (a retry's backoff or a delay/wait), with when it ends.
export function waitingBadge(waiting) {
  if (!waiting) return null;
  const what = waiting.kind === "retry"
    ? `retry ${waiting.attempt} of ${waiting.step}` : `delay of ${waiting.step}`;
  return h("span", { class: "badge waiting", title: `waiting until ${waiting.waitingUntil}` },
    `waiting: ${what} until `, when(waiting.waitingUntil));
}
