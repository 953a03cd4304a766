// Automations: trigger type, enabled, concurrency, next cron time and each one's recent runs.
import { api } from "./api.js";
import { badge, h, runLink, when } from "./dom.js";

export async function renderAutomations(main) {
  const { automations } = await api("GET", "/api/automations");
  const recent = await Promise.all(automations.map((a) =>
    api("GET", "/api/automations/runs", { query: { automationName: a.name, pageSize: 5 } })));
  main.replaceChildren(
    h("div", { class: "title" }, h("h1", {}, "Automations")),
    h("div", { class: "scroll" }, h("table", { class: "automations" },
      h("caption", { class: "sr-only" }, "Automations"),
      h("thead", {}, h("tr", {}, ["Name", "Trigger", "Enabled", "Concurrency", "Next run",
        "Recent runs"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, automations.map((a, index) => h("tr", {},
        h("td", { "data-label": "Name" },
          h("a", { href: `#/runs?automation=${encodeURIComponent(a.name)}` }, a.name),
          a.description ? h("div", { class: "muted" }, a.description) : null),
        h("td", { "data-label": "Trigger" }, a.triggerType),
        h("td", { "data-label": "Enabled" }, a.enabled ? "yes" : h("strong", {}, "disabled")),
        h("td", { "data-label": "Concurrency" }, a.concurrency ? `limit ${a.concurrency.limit}` : "–"),
        h("td", { "data-label": "Next run" }, a.nextRunAt ? when(a.nextRunAt) : "–"),
        h("td", { "data-label": "Recent runs" },
          recent[index].runs.length
            ? h("ul", { class: "recent" }, recent[index].runs.map((r) =>
              h("li", {}, runLink(r.id), " ", badge(r.status))))
            : h("span", { class: "muted" }, "none"),
          recent[index].pagination.total > 5
            ? h("div", { class: "muted" }, `${recent[index].pagination.total} in all`) : null)))))));
  return () => {};
}
