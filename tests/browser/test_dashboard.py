"""The dashboard in headless Chromium against the local stack, as an operator uses it:
sign in through the `make run` link, filter the runs, open a failed run, replay it from a
chosen step and watch the new run complete, cancel a running run; plus the automations page,
a narrow screen and the API docs page. Screenshots go to tests/artifacts/."""
from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from .conftest import shot

ORDER_BAD = {"id": "o-1", "items": "not-a-list"}
ORDER_GOOD = {"id": "o-1", "items": [{"price": 4}, {"price": 8}]}


def start(stack, name: str, data: dict) -> str:
    answer = stack.post(f"/api/automations/{name}/trigger", {"triggerData": data})
    assert answer.status == 202, answer.body
    return answer.body["id"]


def ended(stack, run_id: str, status: str) -> None:
    stack.wait_for(f"/api/automations/runs/{run_id}",
                   lambda r: r.body["status"] == status, timeout=30)


def sign_in(page, stack, path: str = "") -> None:
    """Open the link `make run` prints; the token must leave the address bar."""
    page.goto(f"{stack.url}/#token={stack.token}")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    assert stack.token not in page.url
    assert page.evaluate("sessionStorage.getItem('runs.token')") == stack.token
    if path:
        page.goto(f"{stack.url}/{path}")


def test_token_is_asked_for_once_and_kept_in_session_storage(page, stack):
    page.goto(stack.url + "/")
    expect(page.get_by_role("heading", name="Sign in with an API token")).to_be_visible()
    page.get_by_label("Bearer token").fill("rt_wrong")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.get_by_label("Bearer token").fill(stack.token)
    page.get_by_label("Bearer token").press("Enter")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()


def test_filter_the_runs_list(page, stack):
    failed = start(stack, "order-total", ORDER_BAD)
    completed = start(stack, "order-total", ORDER_GOOD)
    ended(stack, failed, "failed")
    ended(stack, completed, "completed")
    sign_in(page, stack)
    rows = page.locator("table.runs tbody tr")
    expect(rows.filter(has_text=failed[:8])).to_have_count(1)
    page.get_by_label("Automation").select_option("order-total")
    page.get_by_label("Status").select_option("failed")
    expect(rows.filter(has_text=completed[:8])).to_have_count(0)
    expect(rows.filter(has_text=failed[:8])).to_have_count(1)
    for status in rows.locator(".badge").all_inner_texts():
        assert status == "failed"
    expect(page.locator(".summary")).to_contain_text(re.compile(r"\d+ runs? · page 1 of"))
    assert "status=failed" in page.url and "automation=order-total" in page.url
    shot(page, "runs-list-filtered")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Trigger").select_option("cron")
    expect(page.locator(".summary")).to_contain_text("0 runs")


def test_open_a_failed_run_and_replay_it_from_a_chosen_step(page, stack):
    failed = start(stack, "order-total", ORDER_BAD)
    ended(stack, failed, "failed")
    sign_in(page, stack, "#/runs?status=failed")
    page.locator("table.runs tbody tr", has_text=failed[:8]).get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text("order-total")
    expect(page.locator("h1 .badge")).to_have_text("failed")
    total = page.locator('li.step[data-step="total"]')
    expect(total.locator(".badge")).to_have_text("failed")
    expect(total.locator("p.error")).to_contain_text("ExpressionError")
    total.get_by_text(re.compile(r"Details \(1 attempt, 1 failed\)")).click()
    total.locator("details details summary", has_text="Stack").click()
    expect(total.locator("pre.stack")).to_contain_text("Traceback")
    expect(page.locator('li.step[data-step="order"]').locator("pre.json")).to_have_count(1)
    expect(page.locator("table.events")).to_contain_text("created")
    shot(page, "run-failed")

    page.get_by_role("button", name="Replay…").click()
    page.get_by_label("Run again from").select_option("order")
    page.get_by_label("Replace the trigger data (admins)").check()
    page.get_by_label("Trigger data (JSON)").fill('{"id": "o-1", "items": [{"price": 5}]}')
    page.get_by_role("button", name="Start replay").click()
    expect(page.locator("#toast")).to_contain_text("resumes at order")
    expect(page.locator("h1 .badge")).to_have_text("completed", timeout=30_000)
    replay_id = page.url.rsplit("/", 1)[-1]
    assert replay_id != failed
    expect(page.locator(".facts")).to_contain_text(f"Replay of{failed}")
    expect(page.locator('li.step[data-step="receipt"] pre.json')).to_contain_text('"total": 5')
    expect(page.locator("main > p")).to_have_count(1)  # the back link; no stray "null" text
    shot(page, "run-replayed")
    page.locator(".facts a", has_text=failed).click()  # lineage: back to the original
    expect(page.locator(".facts .replays")).to_contain_text(replay_id[:8])
    expect(page.locator(".facts .replays .badge")).to_have_text("completed")


def test_replay_from_a_later_step_marks_reused_steps_with_their_origin(page, stack):
    done = start(stack, "order-total", ORDER_GOOD)
    ended(stack, done, "completed")
    sign_in(page, stack, f"#/runs/{done}")
    page.get_by_role("button", name="Replay…").click()
    page.get_by_label("Run again from").select_option("receipt")
    page.get_by_role("button", name="Start replay").click()
    expect(page.locator(".facts")).to_contain_text(f"Replay of{done}")
    expect(page.locator("h1 .badge")).to_have_text("completed", timeout=30_000)
    order = page.locator('li.step[data-step="order"]')
    expect(order.locator(".badge")).to_have_text("skipped")
    expect(order.locator(".reused a")).to_have_attribute("href", f"#/runs/{done}")


def test_cancel_a_running_run(page, stack):
    slow = start(stack, "slow-report", {})
    stack.wait_for(f"/api/automations/runs/{slow}", lambda r: r.body["status"] == "running")
    sign_in(page, stack, f"#/runs/{slow}")
    expect(page.locator("h1 .badge")).to_have_text("running")
    expect(page.get_by_role("button", name="Replay…")).to_be_disabled()
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#toast")).to_contain_text("Run cancelled")
    expect(page.locator("h1 .badge")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_be_disabled()
    expect(page.locator("table.events")).to_contain_text("token:")
    assert stack.get(f"/api/automations/runs/{slow}").body["status"] == "cancelled"
    shot(page, "run-cancelled")


def test_automations_page_lists_triggers_and_recent_runs(page, stack):
    ran = start(stack, "order-total", ORDER_GOOD)
    ended(stack, ran, "completed")
    sign_in(page, stack, "#/automations")
    row = page.locator("table.automations tbody tr", has_text="order-total")
    expect(row).to_contain_text("manual")
    expect(row.locator(".recent a").first).to_be_visible()
    row.get_by_role("link", name="order-total").click()
    expect(page.get_by_label("Automation")).to_have_value("order-total")
    page.goto(f"{stack.url}/#/automations")
    expect(page.locator("table.automations")).to_be_visible()
    shot(page, "automations")


def test_narrow_screen_shows_runs_as_labelled_cards(browser, stack):
    context = browser.new_context(viewport={"width": 380, "height": 800}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, stack)
        first = page.locator("table.runs tbody tr").first
        expect(first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, "runs-list-narrow")
        first.get_by_role("link").first.click()
        expect(page.locator("h2", has_text="Steps")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, "run-narrow")
    finally:
        context.close()


def test_keyboard_reaches_filters_and_runs(page, stack):
    sign_in(page, stack)
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(4):
        page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id || document.activeElement.tagName")
    assert focused.startswith("f-") or focused == "live", focused


def test_api_docs_page_tries_a_request_with_the_dashboard_token(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.url}/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Automation Runs")
    operation = page.locator("#operations-default-getAutomations")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status")) \
        .to_have_text("200")
    expect(operation.locator(".curl")).to_contain_text(f"Authorization: Bearer {stack.token}")
    expect(operation.locator(".live-responses-table")).to_contain_text("order-total")
    shot(page, "api-docs")


def test_start_up_banner_prints_the_dashboard_link_and_the_docs(stack):
    assert f"{stack.url}/#token={stack.token}" in stack.output
    assert f"{stack.url}/api/docs" in stack.output


def _printed(stack, pattern: str, timeout: float = 10) -> bool:
    """Whether the stack prints a line matching `pattern` (its output reaches the test through
    a pipe and a reader thread, so a line logged just before a poll saw the run end may still
    be on its way)."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, stack.output):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_local_terminal_shows_one_line_per_request_and_step_outcome(stack):
    ran = start(stack, "order-total", ORDER_GOOD)
    ended(stack, ran, "completed")
    assert _printed(stack, r"runs\.http: POST /api/automations/order-total/trigger 202 \d+ ms")
    assert _printed(stack, rf"INFO +step_completed +run_id={ran} .*step=receipt")
    assert _printed(stack, rf"INFO +run ended +run_id={ran} .*status=completed")
    output = stack.output
    assert '{"_aws"' not in output and '"level":' not in output  # no EMF blobs, no JSON logs


def test_bulk_replay_of_all_matching_runs_confirms_the_count_then_shows_the_batch(page, stack):
    failed = [start(stack, "order-total", {**ORDER_BAD, "n": n}) for n in range(3)]
    for run_id in failed:
        ended(stack, run_id, "failed")
    sign_in(page, stack, "#/runs?automation=order-total&status=failed")
    expect(page.locator("table.runs tbody tr", has_text=failed[0][:8])).to_have_count(1)
    dry = stack.post("/api/automations/runs/replay", {
        "automationName": "order-total", "status": ["failed"], "dryRun": True}).body

    page.get_by_label("Apply to").select_option("matching")
    page.get_by_role("button", name="Replay…").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Replay {dry['matched']} run")
    expect(dialog).to_contain_text("automationName=order-total, status=failed")
    shot(page, "bulk-replay-confirm")
    dialog.get_by_role("button", name="Yes, replay").click()

    expect(page.locator("h1")).to_contain_text("Bulk replay")
    expect(page.locator("h1 .badge")).to_have_text("done")
    expect(page.locator('dd[data-fact="Matched"]')).to_have_text(str(dry["matched"]))
    replayed = int(page.locator('dd[data-fact="Replayed"]').inner_text())
    skipped = int(page.locator('dd[data-fact="Skipped"]').inner_text())
    assert replayed >= len(failed) and replayed + skipped == dry["matched"]
    expect(page.locator(".batch-runs a")).to_have_count(replayed)
    shot(page, "bulk-replay-batch")
    batch_id = page.url.rsplit("/", 1)[-1]
    batch = stack.get(f"/api/automations/batches/{batch_id}").body
    replays = {stack.get(f"/api/automations/runs/{r}").body["replayOf"]
               for r in batch["createdRunIds"]}
    assert set(failed) <= replays


def test_bulk_cancel_of_selected_runs(page, stack):
    slow = [start(stack, "slow-report", {"n": n}) for n in range(2)]
    for run_id in slow:
        ended(stack, run_id, "running")
    sign_in(page, stack, "#/runs?automation=slow-report")
    page.get_by_label(f"Select run {slow[0][:8]}").check()
    expect(page.locator(".bulk")).to_contain_text("1 selected")
    page.get_by_role("button", name="Cancel runs…").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Cancel 1 selected run?")
    dialog.get_by_role("button", name="Yes, cancel").click()
    expect(page.locator("#toast")).to_contain_text("Cancelled 1 of 1")
    ended(stack, slow[0], "cancelled")
    assert stack.get(f"/api/automations/runs/{slow[1]}").body["status"] == "running"
    expect(page.locator(".bulk")).to_contain_text("0 selected")


def test_a_run_waiting_for_its_retry_is_found_and_retried_now(page, stack):
    """The waiting badge with its end time in the list (filtered by waiting and by a payload
    key), then "Retry now" on the waiting step runs the next attempt at once, not a minute on."""
    run_id = start(stack, "partner-sync", {"orderId": "o-retry-17"})
    other = start(stack, "partner-sync", {"orderId": "o-other"})
    for waiting in (run_id, other):
        stack.wait_for(f"/api/automations/runs/{waiting}",
                       lambda r: (r.body.get("waiting") or {}).get("kind") == "retry")
    sign_in(page, stack, "#/runs?waiting=retry")
    rows = page.locator("table.runs tbody tr")
    row = rows.filter(has_text=run_id[:8])
    expect(row.locator(".badge.waiting")).to_contain_text("retry 2 of push until")
    page.get_by_label("Search payload (key=value)").fill("orderId=o-retry-17")
    page.get_by_label("Search payload (key=value)").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(run_id[:8])
    assert "data=orderId%3Do-retry-17" in page.url or "data=orderId=o-retry-17" in page.url
    shot(page, "runs-waiting-search")

    row.get_by_role("link").first.click()
    step = page.locator('li.step[data-step="push"]')
    expect(step.locator(".badge.waiting")).to_be_visible()
    step.get_by_role("button", name="Retry now").click()
    expect(page.locator("#toast")).to_contain_text("push: attempt 2 runs now")
    # The partner is still down: the woken second (last) attempt fails and the run ends.
    expect(page.locator("h1 .badge")).to_have_text("exhausted", timeout=30_000)
    expect(step).to_contain_text("attempt 2")
    expect(page.locator("table.events")).to_contain_text("retry-now")
    expect(step.get_by_role("button", name="Retry now")).to_have_count(0)
    shot(page, "run-retried-now")


def test_a_delay_is_resumed_now_from_its_step(page, stack):
    slow = start(stack, "slow-report", {})
    stack.wait_for(f"/api/automations/runs/{slow}",
                   lambda r: (r.body.get("waiting") or {}).get("kind") == "delay")
    sign_in(page, stack, f"#/runs/{slow}")
    expect(page.locator(".title .badge.waiting")).to_contain_text("delay of pause until")
    page.locator('li.step[data-step="pause"]').get_by_role("button", name="Resume now").click()
    expect(page.locator("#toast")).to_contain_text("pause: the delay ends now")
    expect(page.locator("h1 .badge")).to_have_text("completed", timeout=30_000)
