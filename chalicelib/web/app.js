// The dashboard: a hash router over four pages (runs, run, automations, batch), each a module with `render(main, params)`
// that returns a stop() for its live refresh.
import { ApiError, setToken, takeTokenFromHash, token } from "./api.js";
import { h } from "./dom.js";
import { renderAutomations } from "./automations.js";
import { renderBatch } from "./bulk.js";
import { renderRun } from "./run.js";
import { renderRuns } from "./runs.js";

let stop = null;

function tokenForm(main, message) {
  const input = h("input", { id: "token-input", type: "password", name: "token",
    autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "card narrow", onsubmit: (event) => {
    event.preventDefault();
    setToken(input.value);
    route();
  } },
  h("h1", {}, "Sign in with an API token"),
  message ? h("p", { class: "error", role: "alert" }, message) : null,
  h("p", {}, "`make run` prints a link that signs you in, and a token; ",
    "`runs token create --role operator` issues one. It stays in this tab only."),
  h("label", { for: "token-input" }, "Bearer token"), input,
  h("button", { type: "submit" }, "Continue"));
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  if (stop) stop();
  stop = null;
  const main = document.getElementById("main");
  document.getElementById("sign-out").hidden = !token();
  if (!token()) return tokenForm(main);
  const [path, queryText] = (location.hash.replace(/^#/, "") || "/runs").split("?");
  const params = new URLSearchParams(queryText || "");
  const parts = path.split("/").filter(Boolean);
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.toggleAttribute("aria-current", link.dataset.nav === (parts[0] || "runs"));
  }
  try {
    if (parts[0] === "runs" && parts[1]) stop = await renderRun(main, decodeURIComponent(parts[1]));
    else if (parts[0] === "automations") stop = await renderAutomations(main);
    else if (parts[0] === "batches" && parts[1]) stop = await renderBatch(main, decodeURIComponent(parts[1]));
    else stop = await renderRuns(main, params);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      setToken(null);
      return tokenForm(main, "That token was not accepted; enter another.");
    }
    main.replaceChildren(h("p", { class: "error", role: "alert" }, String(error.message)));
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  setToken(null);
  route();
});
// The skip link moves focus to the page's content without touching the hash, which is the
// router's: "#main" would re-render the page and drop the focus the user just moved.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
window.addEventListener("hashchange", route);
takeTokenFromHash();
route();
