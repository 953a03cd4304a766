"""How the CLI prints: Rich tables with status colours for people, JSON for scripts."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "pending": "yellow", "running": "bold cyan", "completed": "green",
    "completed-with-errors": "bold yellow", "failed": "bold red", "timed-out": "magenta",
    "exhausted": "bold red", "cancelled": "dim", "skipped": "dim",
}
TERMINAL = {"completed", "completed-with-errors", "failed", "timed-out", "exhausted",
            "cancelled"}


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr); wide when piped so ids are never cut."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 220
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def print_json(value: Any) -> None:
    """One JSON document on stdout (`--json`)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def status(value: str | None) -> Text:
    """A status word in its colour."""
    return Text(value or "-", style=STATUS_STYLES.get(value or "", ""))


def ms(value: int | None) -> str | None:
    """Milliseconds for people: 850ms, 2.3s."""
    return None if value is None else f"{value / 1000:.1f}s" if value >= 1000 else f"{value}ms"


def cell(value: Any) -> Text | str:
    if isinstance(value, Text):
        return value
    return "-" if value in (None, "") else str(value)


def table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A Rich table; the first column (ids) never wraps."""
    result = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
                   box=None, pad_edge=False)
    for index, header in enumerate(headers):
        result.add_column(header, no_wrap=index == 0, overflow="fold")
    for row in rows:
        result.add_row(*(cell(value) for value in row))
    return result


def waiting(run: dict[str, Any]) -> Text | None:
    """What a running run waits for: `retry 2 of pay until …` / `delay of hold until …`."""
    wait = run.get("waiting")
    if not wait:
        return None
    what = (f"retry {wait['attempt']} of {wait['step']}" if wait["kind"] == "retry"
            else f"delay of {wait['step']}")
    return Text(f"{what} until {wait['waitingUntil']}", style="cyan")


def run_rows(runs: Sequence[dict[str, Any]]) -> Table:
    """The runs list."""
    return table(None, ["ID", "AUTOMATION", "STATUS", "TRIGGER", "CREATED", "DURATION",
                        "REPLAY OF", "WAITING"],
                 [[r["id"], r["automationName"], status(r["status"]), r["triggerType"],
                   r["createdAt"], ms(r["durationMs"]), r.get("replayOf"), waiting(r)]
                  for r in runs])


def run_detail(out: Console, run: dict[str, Any], verbose: bool) -> None:
    """`runs show`: fields, steps with their attempts and errors, events; outputs with -v."""
    fields = ["id", "automationName", "triggerType", "createdAt", "startedAt", "completedAt",
              "attempt", "replayOf", "cancelledAt"]
    rows: list[list[Any]] = [["status", status(run["status"])]]
    rows += [[name, run.get(name)] for name in fields]
    rows += [["duration", ms(run.get("durationMs"))], ["queued", ms(run.get("queuedMs"))]]
    if run.get("waiting"):
        rows.append(["waiting", waiting(run)])
    if run.get("error"):
        rows.append(["error", Text(_error_text(run["error"]), style="red")])
    out.print(table(None, ["FIELD", "VALUE"], rows))
    out.print()
    out.print(table("Steps", ["#", "NAME", "ACTION", "STATUS", "ATTEMPT", "DURATION", "ERROR",
                              "REUSED FROM"],
                    [[s["index"], s["name"], f"{s['type']}/{s['operator']}", status(s["status"]),
                      s["attempt"], ms(s.get("durationMs")),
                      Text(_error_text(s.get("error")), style="red") if s.get("error") else None,
                      s.get("reusedFrom")] for s in run["steps"]]))
    for step in run["steps"]:
        _attempts(out, step, verbose)
    if verbose:
        out.print()
        out.print(Text("Trigger data", style="bold"))
        out.print_json(json.dumps(run.get("triggerData")))
        for step in run["steps"]:
            if step.get("output") is not None:
                out.print(Text(f"Output of {step['name']}", style="bold"))
                out.print_json(json.dumps(step["output"]))
    out.print()
    out.print(table("Events", ["AT", "TYPE", "FROM", "TO", "ACTOR"],
                    [[e["at"], e["type"], e.get("from"), e.get("to"), e.get("actor")]
                     for e in run["events"]]))


def _attempts(out: Console, step: dict[str, Any], verbose: bool) -> None:
    """A step's attempts when any failed (every attempt's stack with --verbose)."""
    attempts = step.get("attempts") or []
    if not any(a.get("error") for a in attempts):
        return
    out.print()
    out.print(table(f"Attempts of {step['name']}", ["#", "STARTED", "COMPLETED", "ERROR"],
                    [[a.get("attempt"), a.get("startedAt"), a.get("completedAt"),
                      Text(f"{a.get('errorType') or 'Error'}: {a['error']}", style="red")
                      if a.get("error") else Text("ok", style="green")] for a in attempts]))
    if verbose:
        for attempt in attempts:
            if attempt.get("stack"):
                out.print(Text(f"stack of attempt {attempt.get('attempt')}", style="dim"))
                out.print(attempt["stack"].rstrip(), markup=False, highlight=False)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        kind = error.get("type") or error.get("errorType")
        message = error.get("message") or json.dumps(error)
        return f"{kind}: {message}" if kind else message
    return str(error)


def batch_progress(batch: dict[str, Any]) -> str:
    """One line of a batch's progress: what it did so far, and whether it is done."""
    did = "replayed" if batch["action"] == "replay" else "cancelled"
    state = "done" if batch["done"] else "running"
    error = f" · stopped: {batch['error']}" if batch.get("error") else ""
    return (f"{batch['action']} {batch['id']}: {batch['processed']}/{batch['matched']} handled · "
            f"{did} {batch[did]} · skipped {batch['skipped']} · failed {batch['failed']} · "
            f"{state}{error}")


def batch_detail(out: Console, batch: dict[str, Any]) -> None:
    """A batch: its filter and counts, then the runs it created or cancelled and failures."""
    out.print(table(None, ["FIELD", "VALUE"], [
        ["id", batch["id"]], ["action", batch["action"]],
        ["filter", json.dumps(batch["filter"])], ["created", batch["createdAt"]],
        ["finished", batch["finishedAt"]], ["matched", batch["matched"]],
        ["processed", batch["processed"]],
        ["replayed" if batch["action"] == "replay" else "cancelled",
         batch["replayed" if batch["action"] == "replay" else "cancelled"]],
        ["skipped", batch["skipped"]], ["failed", batch["failed"]],
        ["done", "yes" if batch["done"] else "no"], ["error", batch.get("error")]]))
    ids = batch.get("createdRunIds") or batch.get("cancelledRunIds") or []
    if ids:
        label = "created runs" if batch["action"] == "replay" else "cancelled runs"
        out.print(f"\n{label} ({len(ids)}):", highlight=False)
        for run_id in ids:
            out.print(f"  {run_id}", highlight=False)
    for failure in batch.get("failures", []):
        out.print(f"failed {failure['runId']}: {failure['message']}", highlight=False)
