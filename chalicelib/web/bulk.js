// Bulk actions on the runs list: select runs (or every run the filters match), confirm with
// the count (a dry run for "all matching"), then follow the batch on its own page.
import { api } from "./api.js";
import { h, runLink, toast, when } from "./dom.js";

const POLL_MS = 1000;

// The bar above the runs table. `state.selected` holds the ids ticked on any page;
// `filterBody()` answers the list filters as a bulk body (null when none is set).
export function bulkBar(state, filterBody, reload) {
  const scope = h("select", { id: "bulk-scope", name: "scope" },
    h("option", { value: "selected" }, "Selected runs"),
    h("option", { value: "matching" }, "All runs matching the filters"));
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const panel = h("div", { class: "confirm", hidden: true, role: "alertdialog",
    "aria-labelledby": "bulk-question" });
  const replay = h("button", { type: "button", onclick: () => ask("replay") }, "Replay…");
  const cancel = h("button", { type: "button", class: "danger", onclick: () => ask("cancel") },
    "Cancel runs…");
  const bar = h("div", { class: "bulk", role: "group", "aria-label": "Bulk actions" },
    h("label", { for: "bulk-scope" }, "Apply to"), scope, count, replay, cancel);

  function refresh() {
    const n = state.selected.size;
    count.textContent = scope.value === "selected" ? `${n} selected` : "";
    const none = scope.value === "selected" ? n === 0 : !filterBody();
    replay.disabled = cancel.disabled = none;
    bar.title = scope.value === "matching" && !filterBody()
      ? "Choose at least one filter first (automation, status, trigger or time; not waiting " +
        "or a payload search)" : "";
  }
  scope.addEventListener("change", refresh);

  async function ask(action) {
    panel.hidden = false;
    if (scope.value === "selected") {
      const ids = [...state.selected];
      confirmPanel(action, `${verb(action)} ${ids.length} selected run` +
        `${ids.length === 1 ? "" : "s"}?`, ids.slice(0, 20), () => each(action, ids));
      return;
    }
    panel.replaceChildren(h("p", {}, "Counting the matching runs…"));
    try {
      const dry = await api("POST", `/api/automations/runs/${action}`,
        { body: { ...filterBody(), dryRun: true } });
      confirmPanel(action, `${verb(action)} ${dry.matched} run${dry.matched === 1 ? "" : "s"} ` +
        `matching ${describe(dry.filter)}?` + (action === "cancel"
          ? " Only pending and running ones are cancelled." : ""), dry.firstIds, async () => {
        const started = await api("POST", `/api/automations/runs/${action}`,
          { body: filterBody() });
        location.hash = `#/batches/${encodeURIComponent(started.batchId)}`;
      });
    } catch (error) {
      panel.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
    }
  }

  function confirmPanel(action, question, ids, go) {
    const yes = h("button", { type: "button", class: action === "cancel" ? "danger" : "",
      onclick: async () => {
        yes.disabled = true;
        try { await go(); } catch (error) { toast(error.message, "error"); }
        panel.hidden = true;
      } }, `Yes, ${action}`);
    panel.replaceChildren(
      h("p", { id: "bulk-question" }, question),
      ids.length ? h("p", { class: "muted" }, "First: ", ids.map((id) => [runLink(id), " "])) : null,
      h("div", { class: "actions" }, yes,
        h("button", { type: "button", onclick: () => { panel.hidden = true; } }, "No")));
    yes.focus();
  }

  // Selected runs go one by one through the single-run routes (the bulk routes take filters).
  async function each(action, ids) {
    let done = 0;
    const failed = [];
    for (const id of ids) {
      try {
        await api("POST", `/api/automations/runs/${encodeURIComponent(id)}/${action}`,
          { body: action === "replay" ? {} : undefined });
        done += 1;
      } catch (error) {
        failed.push(`${id.slice(0, 8)}: ${error.message}`);
      }
    }
    state.selected.clear();
    toast(`${action === "replay" ? "Replayed" : "Cancelled"} ${done} of ${ids.length}` +
      (failed.length ? `; not done: ${failed.join("; ")}` : ""), failed.length ? "error" : "info");
    reload();
  }

  refresh();
  return { element: h("div", {}, bar, panel), refresh };
}

function verb(action) {
  return action === "replay" ? "Replay" : "Cancel";
}

function describe(filter) {
  return Object.entries(filter).map(([key, value]) => `${key}=${[].concat(value).join(",")}`)
    .join(", ");
}

// #/batches/<id>: a batch's progress, live until it is done.
export async function renderBatch(main, id) {
  const heading = h("h1", {}, "Batch ", h("code", {}, id.slice(0, 8)));
  const bar = h("progress", { max: "1", value: "0", "aria-label": "Progress" });
  const facts = h("dl", { class: "facts" });
  const runs = h("ul", { class: "batch-runs" });
  const failures = h("ul", { class: "batch-failures" });
  main.replaceChildren(h("div", { class: "title" }, heading), bar, facts,
    h("h2", {}, "Runs"), runs, h("h2", {}, "Failures"), failures);

  async function load() {
    const batch = await api("GET", `/api/automations/batches/${encodeURIComponent(id)}`);
    const did = batch.action === "replay" ? "replayed" : "cancelled";
    bar.max = Math.max(1, batch.matched);
    bar.value = batch.processed;
    heading.replaceChildren(`${batch.action === "replay" ? "Bulk replay" : "Bulk cancel"} `,
      h("code", {}, id.slice(0, 8)), " ",
      h("span", { class: `badge s-${batch.done ? "completed" : "running"}` },
        batch.done ? "done" : "running"));
    facts.replaceChildren(...[
      ["Filter", describe(batch.filter)], ["Matched", batch.matched],
      ["Handled", batch.processed], [did[0].toUpperCase() + did.slice(1), batch[did]],
      ["Skipped", batch.skipped], ["Failed", batch.failed], ["Started", when(batch.createdAt)],
      ["Finished", when(batch.finishedAt)], ...(batch.error ? [["Stopped", batch.error]] : []),
    ].flatMap(([term, value]) => [h("dt", {}, term), h("dd", { "data-fact": term }, value)]));
    const ids = batch.createdRunIds || batch.cancelledRunIds || [];
    runs.replaceChildren(...(ids.length ? ids.map((runId) => h("li", {}, runLink(runId)))
      : [h("li", { class: "muted" }, "None yet.")]));
    failures.replaceChildren(...(batch.failures.length
      ? batch.failures.map((f) => h("li", {}, runLink(f.runId), ` ${f.message}`))
      : [h("li", { class: "muted" }, "None.")]));
    return batch.done;
  }
  if (await load()) return () => {};
  const timer = setInterval(async () => {
    try {
      if (await load()) clearInterval(timer);
    } catch (error) {
      toast(error.message, "error");
    }
  }, POLL_MS);
  return () => clearInterval(timer);
}
