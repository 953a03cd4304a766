"""The `runs` commands (Typer): runs, automations and tokens, each with `--json`."""
from __future__ import annotations

import json
import os
import time
import urllib.parse
from typing import Annotated, Any, Optional

import typer

from ..domain.errors import DomainError
from ..settings import ClientSettings
from . import render
from .client import ApiClient, Exit

cli = typer.Typer(name="runs", help="Automation Runs: list, inspect, trigger, replay and "
                  "cancel runs over the runs API (RUNS_URL, RUNS_TOKEN).",
                  no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]})
tokens = typer.Typer(help="Manage API tokens: create writes the token store directly; list and "
                     "revoke go through the API (admin token).",
                     no_args_is_help=True)
cli.add_typer(tokens, name="token")

Json = Annotated[bool, typer.Option("--json", help="print the API's answer as JSON")]
RunId = Annotated[str, typer.Argument(help="run id", show_default=False)]
RUNS = "/api/automations/runs"


@cli.callback()
def options(
    ctx: typer.Context,
    url: Annotated[Optional[str], typer.Option(
        envvar="RUNS_URL", help="API base URL  [env: RUNS_URL; default "
        f"{ClientSettings.url}]", show_envvar=False)] = None,
    token: Annotated[Optional[str], typer.Option(
        envvar="RUNS_TOKEN", help="bearer token  [env: RUNS_TOKEN]",
        show_envvar=False)] = None,
) -> None:
    """Where the API is and who is calling."""
    ctx.obj = ApiClient((url or ClientSettings.url).rstrip("/"), token)


def _api(ctx: typer.Context) -> ApiClient:
    return ctx.find_root().obj


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _json_arg(text: str | None, option: str) -> Any:
    try:
        return json.loads(text) if text is not None else None
    except ValueError as exc:
        raise DomainError(f"{option} is not valid JSON ({exc.msg} at column {exc.colno})") \
            from None


@cli.command("list")
def list_runs(
    ctx: typer.Context,
    status: Annotated[Optional[list[str]], typer.Option(help="repeatable")] = None,
    automation: Annotated[Optional[str], typer.Option(help="automation name")] = None,
    trigger_type: Annotated[Optional[str], typer.Option(
        help="manual | webhook | cron | automation-failure")] = None,
    replay_of: Annotated[Optional[str], typer.Option(help="replays of this run")] = None,
    since: Annotated[Optional[str], typer.Option(help="ISO 8601, on createdAt")] = None,
    until: Annotated[Optional[str], typer.Option(help="ISO 8601, on createdAt")] = None,
    page_size: Annotated[Optional[int], typer.Option(help="1..100")] = None,
    page: Annotated[Optional[int], typer.Option()] = None,
    cursor: Annotated[Optional[str], typer.Option(help="nextCursor of the last page")] = None,
    waiting: Annotated[Optional[str], typer.Option(
        help="retry | delay: running runs waiting for a retry's backoff or a delay")] = None,
    data: Annotated[Optional[str], typer.Option(
        help="KEY=VALUE: runs whose trigger data has VALUE under KEY (a key the automation "
        "declares in `index`)")] = None,
    as_json: Json = False,
) -> None:
    """List runs, newest first, with the API's filters and an exact total."""
    query: dict[str, Any] = {
        "status": status or [], "automationName": automation, "triggerType": trigger_type,
        "replayOf": replay_of, "since": since, "until": until, "pageSize": page_size,
        "page": page, "cursor": cursor, "waiting": waiting}
    if data is not None:
        key, equals, value = data.partition("=")
        if not equals or not key:
            raise DomainError("--data takes KEY=VALUE (a key the automation indexes)")
        query[f"triggerData.{key}"] = value
    answer = _api(ctx).request("GET", RUNS, query)
    if as_json:
        render.print_json(answer)
        return
    out = render.console()
    out.print(render.run_rows(answer["runs"]))
    paging = answer["pagination"]
    out.print(f"\npage {paging['page']}/{max(paging['totalPages'], 1)} · "
              f"{paging['total']} runs", highlight=False)
    if paging["nextCursor"]:
        out.print(f"next page: runs list --cursor {paging['nextCursor']}", highlight=False)
    return


@cli.command()
def show(ctx: typer.Context, run_id: RunId,
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help=(
             "also trigger data, step outputs and error stacks"))] = False,
         as_json: Json = False) -> None:
    """Show one run: fields, steps with attempts and errors, audit events."""
    run = _api(ctx).request("GET", f"{RUNS}/{_quote(run_id)}")
    if as_json:
        render.print_json(run)
    else:
        render.run_detail(render.console(), run, verbose)
    return


@cli.command()
def automations(ctx: typer.Context, as_json: Json = False) -> None:
    """List automations: trigger type, enabled, concurrency, next cron time."""
    answer = _api(ctx).request("GET", "/api/automations")
    if as_json:
        render.print_json(answer)
        return
    render.console().print(render.table(None, [
        "NAME", "TRIGGER", "ENABLED", "CONCURRENCY", "NEXT RUN", "DESCRIPTION"], [
        [a["name"], a["triggerType"], "yes" if a["enabled"] else "no",
         (a.get("concurrency") or {}).get("limit"), a.get("nextRunAt"), a.get("description")]
        for a in answer["automations"]]))
    return


@cli.command()
def trigger(ctx: typer.Context,
            name: Annotated[str, typer.Argument(help="automation name")],
            data: Annotated[Optional[str], typer.Option(help="trigger data as JSON")] = None,
            idempotency_key: Annotated[Optional[str], typer.Option()] = None,
            as_json: Json = False) -> None:
    """Start a run of an automation."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    answer = _api(ctx).request("POST", f"/api/automations/{_quote(name)}/trigger",
                               body={"triggerData": _json_arg(data, "--data") or {}},
                               headers=headers)
    if as_json:
        render.print_json(answer)
    else:
        render.console().print(f"started {answer['id']} ({answer['status']})", highlight=False)
    return


Filters = Annotated[Optional[list[str]], typer.Option(
    "--filter", help="bulk: KEY=VALUE, repeatable; keys automation, status (repeatable), "
    "triggerType, replayOf, since, until")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="bulk: count the matching runs and "
                                      "show the first ids; change nothing")]
Limit = Annotated[Optional[int], typer.Option(help="bulk: the most runs the batch takes")]
FILTER_KEYS = {"automation": "automationName", "automationname": "automationName",
               "status": "status", "triggertype": "triggerType", "trigger-type": "triggerType",
               "replayof": "replayOf", "replay-of": "replayOf", "since": "since",
               "until": "until"}


@cli.command()
def cancel(ctx: typer.Context,
           run_id: Annotated[Optional[str], typer.Argument(
               help="run id (or --filter for a bulk cancel)", show_default=False)] = None,
           filters: Filters = None, dry_run: DryRun = False, limit: Limit = None,
           wait: Annotated[bool, typer.Option(
               "--wait", help="bulk: follow the batch until it is done")] = False,
           as_json: Json = False) -> None:
    """Cancel a pending or running run, or (--filter) every one a filter matches."""
    if filters:
        _bulk(ctx, "cancel", _one_target(run_id, filters), dry_run, limit, wait, as_json)
        return
    answer = _api(ctx).request("POST", f"{RUNS}/{_quote(_one_target(run_id, filters))}/cancel")
    if as_json:
        render.print_json(answer)
    else:
        render.console().print(f"cancelled {answer['id']} at {answer['cancelledAt']}",
                               highlight=False)
    return


def _one_target(run_id: str | None, filters: list[str] | None) -> Any:
    """The run id, or the bulk filter body: exactly one of them."""
    if bool(run_id) == bool(filters):
        raise DomainError("give a run id or --filter KEY=VALUE (not both)")
    return run_id if run_id else _filter_body(filters or [])


def _filter_body(filters: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        name = FILTER_KEYS.get(key.strip().lower())
        if not sep or name is None or not value:
            raise DomainError(f"--filter {item!r}: use KEY=VALUE with KEY one of "
                              "automation, status, triggerType, replayOf, since, until")
        if name == "status":
            body.setdefault("status", []).append(value)
        else:
            body[name] = value
    return body


def _bulk(ctx: typer.Context, action: str, body: dict[str, Any], dry_run: bool,
          limit: int | None, wait: bool, as_json: bool) -> None:
    """POST a bulk replay or cancel; print the dry run, or the batch (followed with --wait)."""
    if limit is not None:
        body["limit"] = limit
    if dry_run:
        body["dryRun"] = True
    api = _api(ctx)
    answer = api.request("POST", f"{RUNS}/{action}", body=body)
    out = render.console()
    if dry_run:
        if as_json:
            render.print_json(answer)
            return
        out.print(f"dry run: would {action} up to {answer['matched']} runs "
                  f"({answer['total']} match)", highlight=False)
        for run_id in answer["firstIds"]:
            out.print(f"  {run_id}", highlight=False)
        return
    if not as_json:
        note = " (the same request was sent before)" if answer["deduplicated"] else ""
        out.print(f"batch {answer['batchId']}: {action} of {answer['matched']} matching runs "
                  f"started{note}; follow it with `runs batch {answer['batchId']}`",
                  highlight=False)
    if not wait:
        if as_json:
            render.print_json(answer)
        return
    final = follow_batch(api, answer["batchId"], 1.0, quiet=as_json)
    if as_json:
        render.print_json(final)


@cli.command("retry-now")
def retry_now(ctx: typer.Context, run_id: RunId,
              step: Annotated[str, typer.Argument(help="step name", show_default=False)],
              as_json: Json = False) -> None:
    """Wake a step waiting for its retry's backoff (a delay/wait: admin) at once."""
    answer = _api(ctx).request(
        "POST", f"{RUNS}/{_quote(run_id)}/steps/{_quote(step)}/retry-now")
    if as_json:
        render.print_json(answer)
        return
    what = (f"attempt {answer['attempt']} runs now" if answer["kind"] == "retry"
            else "its delay ends now")
    again = " (already woken)" if answer["repeated"] else ""
    render.console().print(f"woke {answer['step']} of {answer['runId']}: {what}{again}",
                           highlight=False)
    return


@cli.command()
def batch(ctx: typer.Context,
          batch_id: Annotated[str, typer.Argument(help="batch id", show_default=False)],
          wait: Annotated[bool, typer.Option(
              "--wait", help="follow the batch until it is done")] = False,
          interval: Annotated[float, typer.Option(help="seconds between polls")] = 1.0,
          as_json: Json = False) -> None:
    """Show a bulk replay or cancel: matched, replayed/cancelled, skipped, failed, done."""
    api = _api(ctx)
    answer = follow_batch(api, batch_id, interval, quiet=as_json) if wait else \
        api.request("GET", f"/api/automations/batches/{_quote(batch_id)}")
    if as_json:
        render.print_json(answer)
    elif not wait:
        render.batch_detail(render.console(), answer)


def follow_batch(api: ApiClient, batch_id: str, interval: float, *,
                 quiet: bool) -> dict[str, Any]:
    """Poll a batch, printing its progress when it changes; the batch once done."""
    out, last = render.console(), None
    while True:
        answer = api.request("GET", f"/api/automations/batches/{_quote(batch_id)}")
        line = render.batch_progress(answer)
        if line != last and not quiet:
            out.print(line, highlight=False)
            last = line
        if answer["done"]:
            return answer
        time.sleep(interval)


@cli.command()
def replay(ctx: typer.Context,
           run_id: Annotated[Optional[str], typer.Argument(
               help="run id (or --filter for a bulk replay)", show_default=False)] = None,
           from_step: Annotated[Optional[str], typer.Option(
               help="run this step and every later one again")] = None,
           definition: Annotated[str, typer.Option(help="latest | original")] = "latest",
           data: Annotated[Optional[str], typer.Option(
               help="replacement trigger data as JSON (admin)")] = None,
           wait: Annotated[bool, typer.Option(
               "--wait", help="follow the new run's steps until it ends")] = False,
           interval: Annotated[float, typer.Option(help="seconds between polls")] = 1.0,
           filters: Filters = None, dry_run: DryRun = False, limit: Limit = None,
           again: Annotated[bool, typer.Option(
               "--again", help="bulk: also runs an earlier replay covered")] = False,
           as_json: Json = False) -> None:
    """Replay a terminal run from its first step that did not complete (or --from-step), or
    (--filter) every terminal run a filter matches, in a batch."""
    target = _one_target(run_id, filters)
    body: dict[str, Any] = {"definition": definition}
    if from_step:
        body["fromStep"] = from_step
    if data is not None:
        body["triggerData"] = _json_arg(data, "--data")
    if filters:
        _bulk(ctx, "replay", {**target, **body, **({"again": True} if again else {})},
              dry_run, limit, wait, as_json)
        return
    api = _api(ctx)
    answer = api.request("POST", f"{RUNS}/{_quote(target)}/replay", body=body)
    if not as_json:
        render.console().print(
            f"replay {answer['id']} of {answer['replayOf']}: resumes at "
            f"{answer['resumeFrom']}, reuses {', '.join(answer['reusedSteps']) or 'nothing'}",
            highlight=False)
    if not wait:
        if as_json:
            render.print_json(answer)
        return
    final = follow_run(api, answer["id"], interval, quiet=as_json)
    if as_json:
        render.print_json(final)
    _exit_for(final)


@cli.command()
def tail(ctx: typer.Context,
         run_id: Annotated[Optional[str], typer.Argument(
             help="follow this run's steps until it ends (default: follow new runs)",
             show_default=False)] = None,
         automation: Annotated[Optional[str], typer.Option(help="only this automation")] = None,
         interval: Annotated[float, typer.Option(help="seconds between polls")] = 2.0,
         polls: Annotated[int, typer.Option(help="stop after N polls (0: never)")] = 0,
         as_json: Json = False) -> None:
    """Follow runs as they start and change status, or one run's steps live (Ctrl-C stops)."""
    api = _api(ctx)
    if run_id:
        _exit_for(follow_run(api, run_id, interval, quiet=False, as_json=as_json, polls=polls))
        return
    seen: dict[str, str] = {}
    out = render.console()
    done = 0
    while True:
        answer = api.request("GET", RUNS, {"automationName": automation, "pageSize": 50})
        for run in reversed(answer["runs"]):
            if seen.get(run["id"]) != run["status"]:
                seen[run["id"]] = run["status"]
                if as_json:
                    print(json.dumps(run), flush=True)
                else:
                    out.print(run["createdAt"], run["id"], f"{run['automationName']:<24}",
                              render.status(run["status"]), highlight=False)
        done += 1
        if polls and done >= polls:
            return
        time.sleep(interval)


def _exit_for(run: dict[str, Any]) -> None:
    """Exit.RUN_NOT_COMPLETED unless the run completed (with or without tolerated errors)."""
    if run["status"] not in ("completed", "completed-with-errors"):
        raise typer.Exit(Exit.RUN_NOT_COMPLETED)


def follow_run(api: ApiClient, run_id: str, interval: float, *, quiet: bool,
               as_json: bool = False, polls: int = 0) -> dict[str, Any]:
    """Poll a run, printing each step's (and the run's) status changes; the run once terminal."""
    out = render.console()
    seen: dict[str, str] = {}
    done = 0
    while True:
        run = api.request("GET", f"{RUNS}/{_quote(run_id)}")
        changes = [(f"step {s['index']} {s['name']}", s["status"], s) for s in run["steps"]]
        changes.append(("run", run["status"], run))
        for key, value, item in changes:
            if seen.get(key) == value:
                continue
            seen[key] = value
            if as_json:
                print(json.dumps({"runId": run_id, "what": key, "status": value,
                                  "error": item.get("error")}), flush=True)
            elif not quiet:
                error = item.get("error")
                note = f"  {render._error_text(error)}" if error else ""
                out.print(f"{key:<28}", render.status(value), note, highlight=False)
        done += 1
        if run["status"] in render.TERMINAL or (polls and done >= polls):
            return run
        time.sleep(interval)


def _token_container(environ):
    """Where `runs token create` writes: the configured backend when RUNS_BACKEND or
    RUNS_TABLE names one (a deployed stage's table); otherwise the local stack's database
    (RUNS_DB), so no AWS variable is needed next to `make run`."""
    from ..bootstrap import Container, container  # noqa: PLC0415 - only token commands
    from ..settings import Settings  # noqa: PLC0415

    if environ.get("RUNS_BACKEND") or environ.get("RUNS_TABLE"):
        return container()
    return Container(settings=Settings.from_env({**environ, "RUNS_BACKEND": "sqlite"}))


@tokens.command("create")
def token_create(role: Annotated[str, typer.Option(help="viewer | operator | admin")],
                 description: Annotated[str, typer.Option()] = "",
                 expires_in_days: Annotated[Optional[int], typer.Option(
                     min=1, help="omitted: never expires")] = None,
                 as_json: Json = False) -> None:
    """Issue a token through the configured token store; its secret is printed once."""
    from ..services.tokens import create_token  # noqa: PLC0415

    box = _token_container(os.environ)
    token_id, secret = create_token(box.tokens, role, box.clock(), description=description,
                                    expires_in_days=expires_in_days)
    store = (f"local database {box.settings.runs_db}" if box.settings.uses_sqlite
             else f"table {box.settings.runs_table}")
    if as_json:
        render.print_json({"id": token_id, "role": role, "description": description,
                           "expiresInDays": expires_in_days, "secret": secret,
                           "storedIn": store})
        return
    out = render.console()
    out.print(render.table(None, ["FIELD", "VALUE"], [
        ["id", token_id], ["role", role], ["description", description or None],
        ["expires in", f"{expires_in_days} days" if expires_in_days else "never"],
        ["stored in", store]]))
    out.print(f"\n{secret}\n\nThis secret is shown once; it is stored only as a hash.",
              highlight=False)
    return


@tokens.command("list")
def token_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List the API's tokens (admin token): never their secrets."""
    answer = _api(ctx).request("GET", "/api/tokens")
    if as_json:
        render.print_json(answer)
        return
    render.console().print(render.table(None, [
        "ID", "NAME", "ROLE", "CREATED", "LAST USED", "EXPIRES"], [
        [t["id"], t["name"], t["role"], t["createdAt"], t["lastUsedAt"], t["expiresAt"]]
        for t in answer["tokens"]]))


@tokens.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(
        help="token id (from `runs token list`)", show_default=False)],
        as_json: Json = False) -> None:
    """Revoke a token (admin token): its next request gets a 401."""
    answer = _api(ctx).request("DELETE", f"/api/tokens/{_quote(token_id)}")
    if as_json:
        render.print_json(answer)
        return
    render.console().print(f"revoked {token_id}", highlight=False)


@cli.command()
def dev() -> None:
    """Start the local stack (what `make run` starts)."""
    from ..local.__main__ import main as local_main  # noqa: PLC0415

    raise typer.Exit(local_main())
