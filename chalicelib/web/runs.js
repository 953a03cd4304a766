// Runs list: filters kept in the address (#/runs?automation=...), cursor paging, exact totals,
// live refresh.
import { api } from "./api.js";
import { bulkBar } from "./bulk.js";
import { RUN_STATUSES, TRIGGER_TYPES, badge, h, ms, runLink, waitingBadge, when } from "./dom.js";

const REFRESH_MS = 3000;

function select(name, label, options, value) {
  return h("div", { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h("select", { id: `f-${name}`, name },
      h("option", { value: "" }, "any"),
      options.map((option) => h("option", { value: option, selected: option === value }, option))));
}

function input(name, label, type, value) {
  return h("div", { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h("input", { id: `f-${name}`, name, type, value: value || "" }));
}

// "key=value" → { "triggerData.key": "value" } (search by a key the automation indexes).
function payloadQuery(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return {};
  const at = trimmed.indexOf("=");
  if (at < 1) throw new Error("search the trigger data as key=value, e.g. orderId=A-1");
  return { [`triggerData.${trimmed.slice(0, at).trim()}`]: trimmed.slice(at + 1).trim() };
}

function isoOrEmpty(local) {
  return local ? new Date(local).toISOString() : "";
}

export async function renderRuns(main, params) {
  const { automations } = await api("GET", "/api/automations");
  const state = {
    automation: params.get("automation") || "", status: params.get("status") || "",
    trigger: params.get("trigger") || "", since: params.get("since") || "",
    until: params.get("until") || "", pageSize: params.get("pageSize") || "20",
    waiting: params.get("waiting") || "", data: params.get("data") || "",
    cursors: [null], live: true, selected: new Set(),
  };
  const filters = h("form", { class: "filters", "aria-label": "Filter runs" },
    select("automation", "Automation", automations.map((a) => a.name), state.automation),
    select("status", "Status", RUN_STATUSES, state.status),
    select("trigger", "Trigger", TRIGGER_TYPES, state.trigger),
    input("since", "From", "datetime-local", state.since),
    input("until", "To", "datetime-local", state.until),
    select("waiting", "Waiting", ["retry", "delay"], state.waiting),
    input("data", "Search payload (key=value)", "search", state.data),
    h("div", { class: "field" }, h("label", { for: "f-pageSize" }, "Per page"),
      h("select", { id: "f-pageSize", name: "pageSize" },
        ["20", "50", "100"].map((n) => h("option", { value: n, selected: n === state.pageSize }, n)))));
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const body = h("tbody");
  const pageBox = h("input", { type: "checkbox", "aria-label": "Select every run on this page",
    onchange: () => {
      for (const box of body.querySelectorAll("input[data-run]")) {
        box.checked = pageBox.checked;
        if (pageBox.checked) state.selected.add(box.dataset.run);
        else state.selected.delete(box.dataset.run);
      }
      bulk.refresh();
    } });
  const table = h("table", { class: "runs" },
    h("caption", { class: "sr-only" }, "Runs, newest first"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, pageBox), ["Run", "Automation",
      "Status", "Trigger", "Created", "Duration", "Replay of"].map((c) => h("th", { scope: "col" }, c)))),
    body);
  // The bulk routes take the list filters; "all matching" needs at least one of them. They do
  // not take waiting or a payload search: with either set, "all matching" would reach more
  // runs than the list shows, so it is refused (select the runs instead).
  const filterBody = () => {
    if (state.waiting || state.data) return null;
    const entries = Object.entries({ automationName: state.automation,
      status: state.status ? [state.status] : "", triggerType: state.trigger,
      since: isoOrEmpty(state.since), until: isoOrEmpty(state.until) }).filter(([, v]) => v);
    return entries.length ? Object.fromEntries(entries) : null;
  };
  const bulk = bulkBar(state, filterBody, () => load());
  const prev = h("button", { type: "button", onclick: () => { state.cursors.pop(); load(); } }, "← Newer");
  const next = h("button", { type: "button", onclick: () => { state.cursors.push(state.next); load(); } }, "Older →");
  const live = h("input", { type: "checkbox", id: "live", checked: true,
    onchange: () => { state.live = live.checked; } });
  main.replaceChildren(
    h("div", { class: "title" }, h("h1", {}, "Runs"),
      h("label", { class: "live", for: "live" }, live, " Live")),
    filters, bulk.element, summary, h("div", { class: "scroll" }, table),
    h("nav", { class: "pager", "aria-label": "Pages" }, prev, next));

  filters.addEventListener("change", () => {
    const data = new FormData(filters);
    for (const key of ["automation", "status", "trigger", "since", "until", "pageSize",
      "waiting", "data"]) {
      state[key] = data.get(key) || "";
    }
    state.cursors = [null];
    bulk.refresh();
    const query = new URLSearchParams(Object.entries({ automation: state.automation,
      status: state.status, trigger: state.trigger, since: state.since, until: state.until,
      waiting: state.waiting, data: state.data,
      pageSize: state.pageSize === "20" ? "" : state.pageSize }).filter(([, v]) => v));
    history.replaceState(null, "", `#/runs${query.toString() ? "?" + query : ""}`);
    load();
  });

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const cursor = state.cursors[state.cursors.length - 1];
      const answer = await api("GET", "/api/automations/runs", { query: {
        automationName: state.automation, status: state.status, triggerType: state.trigger,
        since: isoOrEmpty(state.since), until: isoOrEmpty(state.until),
        waiting: state.waiting, ...payloadQuery(state.data),
        pageSize: state.pageSize, cursor,
      } });
      const { total, pageSize } = answer.pagination;
      const page = state.cursors.length;
      state.next = answer.pagination.nextCursor;
      summary.textContent = `${total} run${total === 1 ? "" : "s"} · page ${page} of ` +
        `${Math.max(1, Math.ceil(total / pageSize))}`;
      body.replaceChildren(...answer.runs.map((run) => h("tr", {},
        h("td", { "data-label": "Select" }, h("input", { type: "checkbox", "data-run": run.id,
          "aria-label": `Select run ${run.id.slice(0, 8)}`, checked: state.selected.has(run.id),
          onchange: (event) => {
            if (event.target.checked) state.selected.add(run.id);
            else state.selected.delete(run.id);
            bulk.refresh();
          } })),
        h("td", { "data-label": "Run" }, runLink(run.id)),
        h("td", { "data-label": "Automation" }, run.automationName),
        h("td", { "data-label": "Status" }, badge(run.status), " ", waitingBadge(run.waiting)),
        h("td", { "data-label": "Trigger" }, run.triggerType),
        h("td", { "data-label": "Created" }, when(run.createdAt)),
        h("td", { "data-label": "Duration" }, ms(run.durationMs)),
        h("td", { "data-label": "Replay of" }, run.replayOf ? runLink(run.replayOf) : "–"))));
      if (!answer.runs.length) {
        body.replaceChildren(h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No runs match.")));
      }
      pageBox.checked = answer.runs.length > 0 && answer.runs.every((r) => state.selected.has(r.id));
      bulk.refresh();
      prev.disabled = page === 1;
      next.disabled = !state.next;
    } catch (error) {
      summary.textContent = `Could not load runs: ${error.message}`;
    } finally {
      busy = false;
    }
  }
  await load();
  const timer = setInterval(() => { if (state.live && !document.hidden) load(); }, REFRESH_MS);
  return () => clearInterval(timer);
}
