"""The `runs` command line: tokens (written to the token store) and the runs API over HTTP.

Each command is a `register(commands)` function in COMMANDS that adds its argparse
subparser and sets `handler=`; add `trigger`, `replay`, `tail`, `dev` the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from .domain.errors import DomainError
from .settings import ClientSettings


class ApiError(Exception):
    """A non-2xx answer (or no answer) from the runs API."""

    def __init__(self, status: int | None, body: dict[str, Any] | None, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.body = body or {}


class ApiClient:
    """A small JSON-over-HTTP client of the runs API (standard library only)."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Send one request; the decoded JSON answer, or ApiError."""
        query = urllib.parse.urlencode(
            {k: v for k, v in (params or {}).items() if v not in (None, [])}, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}{'?' + query if query else ''}",
                                         data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from None
        except urllib.error.URLError as exc:
            raise ApiError(None, None, f"cannot reach {self.url}: {exc.reason}") from None


def _api_error(exc: urllib.error.HTTPError) -> ApiError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    message = body.get("message") or body.get("Message") or exc.reason
    text = f"{exc.code} {body.get('code', '')} {message}".replace("  ", " ")
    for detail in body.get("details", []):
        allowed = f" (allowed: {', '.join(map(str, detail['allowed']))})" \
            if detail.get("allowed") else ""
        text += f"\n  {detail.get('field') or '-'}: {detail.get('message')}{allowed}"
    if body.get("status"):
        text += f"\n  current status: {body['status']}"
    return ApiError(exc.code, body, text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text columns, left aligned, with '-' for missing values."""
    cells = [[("-" if value is None else str(value)) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = [list(headers)] + cells
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


def _ms(value: int | None) -> str | None:
    return None if value is None else f"{value / 1000:.1f}s" if value >= 1000 else f"{value}ms"


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.url, args.token)


def cmd_token_create(args: argparse.Namespace) -> int:
    """Issue a token through the configured token store and print its secret once."""
    from .bootstrap import container
    from .services.tokens import create_token

    box = container()
    token_id, secret = create_token(box.tokens, args.role, box.clock(),
                                    description=args.description)
    print(table(["FIELD", "VALUE"], [["id", token_id], ["role", args.role],
                                     ["description", args.description or None]]))
    print(f"\n{secret}\n\nThis secret is shown once; it is stored only as a hash.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List runs (newest first) with the API's filters."""
    answer = _client(args).request("GET", "/api/automations/runs", {
        "status": args.status, "automationName": args.automation,
        "triggerType": args.trigger_type, "pageSize": args.page_size,
        "page": args.page, "cursor": args.cursor})
    rows = [[r["id"], r["automationName"], r["status"], r["triggerType"], r["createdAt"],
             _ms(r["durationMs"]), r["replayOf"]] for r in answer["runs"]]
    print(table(["ID", "AUTOMATION", "STATUS", "TRIGGER", "CREATED", "DURATION", "REPLAY OF"],
                rows))
    page = answer["pagination"]
    print(f"\npage {page['page']}/{max(page['totalPages'], 1)} · {page['total']} runs")
    if page["nextCursor"]:
        print(f"next page: runs list --cursor {page['nextCursor']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one run: its fields, its steps and its audit trail."""
    run = _client(args).request("GET", f"/api/automations/runs/{_quote(args.id)}")
    fields = ["id", "automationName", "status", "triggerType", "createdAt", "startedAt",
              "completedAt", "durationMs", "queuedMs", "attempt", "replayOf", "cancelledAt"]
    print(table(["FIELD", "VALUE"], [[name, run.get(name)] for name in fields]
                + [["error", json.dumps(run["error"]) if run.get("error") else None]]))
    print("\nSteps")
    print(table(["#", "NAME", "ACTION", "STATUS", "ATTEMPT", "DURATION", "ERROR"], [
        [s["index"], s["name"], f"{s['type']}/{s['operator']}", s["status"], s["attempt"],
         _ms(s["durationMs"]), (s.get("error") or {}).get("message")] for s in run["steps"]]))
    print("\nEvents")
    print(table(["AT", "TYPE", "FROM", "TO", "ACTOR"], [
        [e["at"], e["type"], e["from"], e["to"], e.get("actor")] for e in run["events"]]))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a pending or running run."""
    answer = _client(args).request("POST", f"/api/automations/runs/{_quote(args.id)}/cancel")
    print(f"cancelled {answer['id']} at {answer['cancelledAt']}")
    return 0


def _json_arg(text: str | None) -> Any:
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        raise DomainError(f"not valid JSON: {text}") from None


def cmd_trigger(args: argparse.Namespace) -> int:
    """Start a run of an automation."""
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    answer = _client(args).request(
        "POST", f"/api/automations/{_quote(args.name)}/trigger",
        body={"triggerData": _json_arg(args.data) or {}}, headers=headers)
    print(f"started {answer['id']} ({answer['status']})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a terminal run from its first step that did not complete (or --from-step)."""
    body: dict[str, Any] = {"definition": args.definition}
    if args.from_step:
        body["fromStep"] = args.from_step
    if args.data is not None:
        body["triggerData"] = _json_arg(args.data)
    answer = _client(args).request("POST", f"/api/automations/runs/{_quote(args.id)}/replay",
                                   body=body)
    print(f"replay {answer['id']} of {answer['replayOf']}: resumes at {answer['resumeFrom']},"
          f" reuses {', '.join(answer['reusedSteps']) or 'nothing'}")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print runs as they appear or change status, polling the list (Ctrl-C stops)."""
    import time  # noqa: PLC0415

    seen: dict[str, str] = {}
    polls = 0
    while args.polls <= 0 or polls < args.polls:
        answer = _client(args).request("GET", "/api/automations/runs", {
            "automationName": args.automation, "pageSize": 50})
        for run in reversed(answer["runs"]):
            if seen.get(run["id"]) != run["status"]:
                seen[run["id"]] = run["status"]
                print(f"{run['createdAt']}  {run['id']}  {run['automationName']:<24} "
                      f"{run['status']}", flush=True)
        polls += 1
        if args.polls <= 0 or polls < args.polls:
            time.sleep(args.interval)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Start the local stack (what `make run` starts)."""
    from .local.__main__ import main as local_main  # noqa: PLC0415

    return local_main()


def register_more(commands: argparse._SubParsersAction) -> None:
    trigger = commands.add_parser("trigger", help="start a run of an automation")
    trigger.add_argument("name")
    trigger.add_argument("--data", help="trigger data as JSON")
    trigger.add_argument("--idempotency-key")
    trigger.set_defaults(handler=cmd_trigger)
    replay = commands.add_parser("replay", help="replay a run (resumes where it failed)")
    replay.add_argument("id")
    replay.add_argument("--from-step")
    replay.add_argument("--definition", choices=["latest", "original"], default="latest")
    replay.add_argument("--data", help="replacement trigger data as JSON (admin)")
    replay.set_defaults(handler=cmd_replay)
    tail = commands.add_parser("tail", help="follow runs as they start and finish")
    tail.add_argument("--automation")
    tail.add_argument("--interval", type=float, default=2.0)
    tail.add_argument("--polls", type=int, default=0, help="stop after N polls (0: never)")
    tail.set_defaults(handler=cmd_tail)
    dev = commands.add_parser("dev", help="start the local stack (as `make run`)")
    dev.set_defaults(handler=cmd_dev)


def _quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def register_token(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser("token", help="manage API tokens")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="issue a token (its secret is printed once)")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--description", default="")
    create.set_defaults(handler=cmd_token_create)


def register_runs(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("list", help="list runs, newest first")
    listing.add_argument("--status", action="append", default=[], help="repeatable")
    listing.add_argument("--automation")
    listing.add_argument("--trigger-type")
    listing.add_argument("--page-size", type=int)
    paging = listing.add_mutually_exclusive_group()
    paging.add_argument("--page", type=int)
    paging.add_argument("--cursor")
    listing.set_defaults(handler=cmd_list)
    show = commands.add_parser("show", help="show a run with its steps and events")
    show.add_argument("id")
    show.set_defaults(handler=cmd_show)
    cancel = commands.add_parser("cancel", help="cancel a pending or running run")
    cancel.add_argument("id")
    cancel.set_defaults(handler=cmd_cancel)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    register_token, register_runs, register_more]


def build_parser(client: ClientSettings | None = None) -> argparse.ArgumentParser:
    """The `runs` parser with every registered command."""
    client = client or ClientSettings.from_env()
    parser = argparse.ArgumentParser(prog="runs", description="Automation Runs command line")
    parser.add_argument("--url", default=client.url, help="API base URL (RUNS_URL)")
    parser.add_argument("--token", default=client.token, help="bearer token (RUNS_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `runs` script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ApiError, DomainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
