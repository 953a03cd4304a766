// One run: header, Replay / Cancel, lineage both ways, step timeline with attempts, outputs,
// trigger data and the audit events; refreshed live until the run ends.
import { api } from "./api.js";
import { TERMINAL, badge, h, ms, pretty, runLink, toast, waitingBadge, when } from "./dom.js";

const REFRESH_MS = 2000;

// "Retry now" on the step a run waits for: its retry backoff (operators) or a delay (admins).
function wakeButton(run, step, reload) {
  const waiting = run.waiting;
  if (!waiting || waiting.step !== step.name) return null;
  const label = waiting.kind === "retry" ? "Retry now" : "Resume now";
  return h("button", { type: "button", class: "wake", onclick: async (event) => {
    event.target.disabled = true;
    try {
      const answer = await api("POST", `/api/automations/runs/${encodeURIComponent(run.id)}` +
        `/steps/${encodeURIComponent(step.name)}/retry-now`);
      toast(answer.kind === "retry" ? `${answer.step}: attempt ${answer.attempt} runs now`
        : `${answer.step}: the delay ends now`, "ok");
    } catch (error) {
      toast(`${label} refused: ${error.message}`, "error");
    }
    reload();
  } }, label);
}

function timeline(run, reload) {
  const start = Date.parse(run.startedAt || run.createdAt);
  const end = Math.max(start + 1, ...run.steps.map((s) => Date.parse(s.completedAt || s.startedAt) || start));
  const span = end - start;
  return h("ol", { class: "timeline", "aria-label": "Steps" }, run.steps.map((step) => {
    const from = step.startedAt ? (Date.parse(step.startedAt) - start) / span : 0;
    const width = step.startedAt ? Math.max(0.01, ((Date.parse(step.completedAt) || end) - Date.parse(step.startedAt)) / span) : 0;
    const failedAttempts = step.attempts.filter((a) => a.error);
    return h("li", { class: `step s-${step.status}`, "data-step": step.name },
      h("div", { class: "step-head" },
        h("span", { class: "step-index" }, `${step.index + 1}.`),
        h("strong", {}, step.name),
        h("code", {}, `${step.type}/${step.operator}`),
        badge(step.status),
        h("span", { class: "muted" }, ms(step.durationMs)),
        step.attempt > 1 ? h("span", { class: "muted" }, `attempt ${step.attempt}`) : null,
        run.waiting && run.waiting.step === step.name ? waitingBadge(run.waiting) : null,
        wakeButton(run, step, reload),
        step.reusedFrom ? h("span", { class: "reused" }, "reused from ",
          h("a", { href: `#/runs/${encodeURIComponent(step.reusedFrom)}` }, "the original run")) : null),
      h("div", { class: "bar", "aria-hidden": "true" },
        h("span", { style: `left:${(from * 100).toFixed(1)}%;width:${(width * 100).toFixed(1)}%` })),
      step.error ? h("p", { class: "error" }, `${step.error.type || "Error"}: ${step.error.message}`) : null,
      (step.attempts.length || step.output !== null) ? h("details", {},
        h("summary", {}, `Details (${step.attempts.length} attempt${step.attempts.length === 1 ? "" : "s"}` +
          `${failedAttempts.length ? `, ${failedAttempts.length} failed` : ""})`),
        step.attempts.length ? h("table", { class: "attempts" },
          h("thead", {}, h("tr", {}, ["#", "Started", "Completed", "Result"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, step.attempts.map((a) => h("tr", {},
            h("td", {}, a.attempt), h("td", {}, when(a.startedAt)), h("td", {}, when(a.completedAt)),
            h("td", {}, a.error ? h("div", {},
              h("span", { class: "error" }, `${a.errorType || "Error"}: ${a.error}`),
              a.stack ? h("details", {}, h("summary", {}, "Stack"), h("pre", { class: "stack", tabindex: "0" }, a.stack)) : null)
              : "ok"))))) : null,
        step.output !== null && step.output !== undefined ? h("div", {}, h("h4", {}, "Output"), pretty(step.output)) : null)
        : null);
  }));
}

function replayForm(run, onDone) {
  const names = run.steps.map((s) => s.name);
  const fromStep = h("select", { id: "replay-from", name: "fromStep" },
    h("option", { value: "" }, "where it stopped (first step not completed)"),
    names.map((name) => h("option", { value: name }, name)));
  const definition = h("select", { id: "replay-definition", name: "definition" },
    h("option", { value: "latest" }, "latest definition"),
    h("option", { value: "original" }, "the run's original definition"));
  const data = h("textarea", { id: "replay-data", name: "triggerData", rows: "6",
    spellcheck: "false" }, JSON.stringify(run.triggerData, null, 2));
  const edit = h("input", { type: "checkbox", id: "replay-edit" });
  const form = h("form", { class: "card replay", "aria-label": "Replay this run", onsubmit: async (event) => {
    event.preventDefault();
    const body = { definition: definition.value };
    if (fromStep.value) body.fromStep = fromStep.value;
    if (edit.checked) {
      try { body.triggerData = JSON.parse(data.value); } catch (error) {
        toast(`Trigger data is not valid JSON: ${error.message}`, "error");
        return;
      }
    }
    try {
      const answer = await api("POST", `/api/automations/runs/${encodeURIComponent(run.id)}/replay`, { body });
      toast(`Replay ${answer.id.slice(0, 8)} started: resumes at ${answer.resumeFrom}`, "ok");
      onDone(answer.id);
    } catch (error) {
      toast(`Replay refused: ${error.message}`, "error");
    }
  } },
  h("h2", {}, "Replay"),
  h("div", { class: "field" }, h("label", { for: "replay-from" }, "Run again from"), fromStep),
  h("div", { class: "field" }, h("label", { for: "replay-definition" }, "Definition"), definition),
  h("div", { class: "field inline" }, edit, h("label", { for: "replay-edit" }, "Replace the trigger data (admins)")),
  h("div", { class: "field" }, h("label", { for: "replay-data" }, "Trigger data (JSON)"), data),
  h("button", { type: "submit" }, "Start replay"));
  return form;
}

export async function renderRun(main, id) {
  let timer = null;
  let stopped = false;
  let replaying = false;
  // Refreshed while the run, or a replay of it, has not ended (lineage shows their status).
  async function load() {
    const [run, replays] = await Promise.all([
      api("GET", `/api/automations/runs/${encodeURIComponent(id)}`),
      api("GET", "/api/automations/runs", { query: { replayOf: id, pageSize: 20 } }),
    ]);
    if (stopped) return true;
    draw(run, replays.runs);
    return TERMINAL.has(run.status) && replays.runs.every((r) => TERMINAL.has(r.status));
  }

  function draw(run, replays) {
    if (replaying) return; // keep a half-filled form
    const cancel = h("button", { type: "button", class: "danger", disabled: TERMINAL.has(run.status),
      onclick: async () => {
        try {
          const answer = await api("POST", `/api/automations/runs/${encodeURIComponent(run.id)}/cancel`);
          toast(`Run cancelled at ${new Date(answer.cancelledAt).toLocaleTimeString()}`, "ok");
        } catch (error) {
          toast(`Cancel refused: ${error.message}`, "error");
        }
        load().catch(() => {});
      } }, "Cancel run");
    const replay = h("button", { type: "button", disabled: !TERMINAL.has(run.status), onclick: () => {
      replaying = true;
      main.querySelector(".actions").after(replayForm(run, (newId) => {
        replaying = false;
        location.hash = `#/runs/${encodeURIComponent(newId)}`;
      }));
      document.getElementById("replay-from").focus();
    } }, "Replay…");
    // replaceChildren would write a null as the text "null": absent parts are dropped.
    main.replaceChildren(...[
      h("p", {}, h("a", { href: "#/runs" }, "← All runs")),
      h("div", { class: "title" }, h("h1", {}, run.automationName, " ", badge(run.status)),
        waitingBadge(run.waiting)),
      facts(run, replays),
      run.error ? h("p", { class: "error", role: "alert" }, `${run.error.type || "Error"}: ${run.error.message}`) : null,
      h("div", { class: "actions" }, replay, cancel),
      h("h2", {}, "Steps"), timeline(run, () => load().catch(() => {})),
      h("h2", {}, "Trigger data"), pretty(run.triggerData),
      h("h2", {}, "Audit events"),
      h("div", { class: "scroll" }, h("table", { class: "events" },
        h("thead", {}, h("tr", {}, ["At", "Event", "From", "To", "Actor", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, run.events.map((e) => h("tr", {},
          h("td", {}, when(e.at)), h("td", {}, e.type), h("td", {}, e.from || "–"), h("td", {}, e.to || "–"),
          h("td", {}, e.actor || "–"),
          h("td", {}, eventDetail(e.detail)))))))].filter(Boolean));
  }
  const settled = await load();
  timer = setInterval(() => {
    if (!document.hidden) load().catch(() => {});
  }, settled ? REFRESH_MS * 3 : REFRESH_MS);
  return () => { stopped = true; clearInterval(timer); };
}

function facts(run, replays) {
  const rows = [
    ["Run", h("code", {}, run.id)], ["Trigger", run.triggerType],
    ["Created", when(run.createdAt)], ["Started", when(run.startedAt)],
    ["Completed", when(run.completedAt)], ["Duration", ms(run.durationMs)],
    ["Queued", ms(run.queuedMs)], ["Attempts", String(run.attempt)],
  ];
  if (run.replayOf) rows.push(["Replay of", runLink(run.replayOf, run.replayOf)]);
  if (replays.length) {
    rows.push(["Replays", h("ul", { class: "replays" }, replays.map((r) => h("li", {}, runLink(r.id), " ", badge(r.status))))]);
  }
  return h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function eventDetail(detail) {
  const entries = Object.entries(detail || {});
  if (!entries.length) return "–";
  return h("span", {}, entries.map(([key, value], index) => [index ? ", " : "", `${key}: `,
    typeof value === "string" && /^[0-9a-f-]{36}$/.test(value) ? runLink(value) : JSON.stringify(value)]));
}
