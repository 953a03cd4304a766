"""The default local stack (SQLite) over real HTTP: `python -m bench.local_stack`.

Starts `python -m chalicelib.local` as `make run` does, on a fresh database file, and drives
a 3-step `data/set` automation through the API the way a user's clients would (trigger, then
poll the run's detail until it is terminal). Prints issue 10's figures:

- completed runs per second, end to end, with 1 client and with 8 clients;
- trigger → completed p50 (1 client, not saturated);
- list (`pageSize=20`, each filter) p50 and detail p50 with ~1,000 runs and with 100,000
  runs in the database (the 100,000 are written straight into the file while it is stopped);
- the stack's RSS after 10,000 runs, and its idle CPU.

Figures only, no pass/fail. BENCH_RUNS (10000) and BENCH_SEED_TO (100000) scale it down.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"local stack ready on http://127\.0\.0\.1:(\d+)")
TOKEN = "bench-admin-token-0123456789"
TERMINAL = {"completed", "completed-with-errors", "failed", "timed-out", "exhausted",
            "cancelled"}
AUTOMATION = "bench-three-sets"
AUTOMATIONS = f"""
automations:
  - name: {AUTOMATION}
    trigger: {{ type: manual }}
    actions:
      - {{ name: a, type: data, operator: set, props: {{ value: {{ n: "{{{{trigger.data.n}}}}" }} }} }}
      - {{ name: b, type: data, operator: set, props: {{ value: "{{{{steps.a.n}}}}" }} }}
      - {{ name: c, type: data, operator: set, props: {{ value: {{ done: true }} }} }}
  - name: bench-other
    trigger: {{ type: webhook }}
    actions:
      - {{ name: a, type: data, operator: set, props: {{ value: 1 }} }}
"""
# Clients poll a run's detail this often: each poll costs the stack an API request, so
# tighter polling measures the polls rather than the runs.
POLL_S = 0.01


class Stack:
    """The local stack as a subprocess on a database file."""

    def __init__(self, db: Path, automations: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"RUNS_BACKEND": "sqlite", "RUNS_DB": str(db), "RUNS_PORT": "0",
                    "RUNS_DEV_TOKEN": TOKEN, "AUTOMATIONS_DIR": str(automations),
                    "PYTHONUNBUFFERED": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"})
        self.process = subprocess.Popen([sys.executable, "-m", "chalicelib.local"], cwd=REPO,
                                        env=env, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.port = 0
        self._clients = threading.local()
        _started.append(self)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 90
        while not self.port:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("stack did not start:\n" + "".join(self.lines))
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.process.stdout:
            if len(self.lines) < 2000:
                self.lines.append(line)
            match = READY.search(line)
            if match:
                self.port = int(match.group(1))

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request on this client thread's keep-alive connection (as an HTTP client
        library's session would); reconnects once when the server closed it."""
        for attempt in (1, 2):
            conn = getattr(self._clients, "conn", None)
            if conn is None:
                conn = self._clients.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=60)
            try:
                conn.request(method, path, body=None if body is None else json.dumps(body),
                             headers={"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/json"})
                response = conn.getresponse()
                return response.status, json.loads(response.read() or b"null")
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._clients.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_once(stack: Stack, n: int) -> tuple[float, float]:
    """Trigger one run and poll its detail until terminal; (seconds from the trigger request
    until a poll saw it completed, seconds from its createdAt to its completedAt)."""
    started = time.perf_counter()
    status, body = stack.request("POST", f"/api/automations/{AUTOMATION}/trigger",
                                 {"triggerData": {"n": n}})
    if status != 202:
        raise SystemExit(f"trigger answered {status}: {body}")
    path = f"/api/automations/runs/{body['id']}"
    while True:
        time.sleep(POLL_S)
        status, run = stack.request("GET", path)
        if status == 200 and run["status"] in TERMINAL:
            if run["status"] != "completed":
                raise SystemExit(f"run ended {run['status']}: {run.get('error')}")
            recorded = (_instant(run["completedAt"]) - _instant(run["createdAt"]))
            return time.perf_counter() - started, recorded.total_seconds()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def drive(stack: Stack, clients: int, runs: int) -> tuple[float, list[tuple[float, float]]]:
    """`runs` runs through `clients` concurrent clients; (runs per second, latencies)."""
    latencies: list[tuple[float, float]] = []
    counter = iter(range(runs))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            took = run_once(stack, n)
            with lock:
                latencies.append(took)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs / (time.perf_counter() - started), latencies


def _p50(latencies: list[tuple[float, float]], which: int) -> str:
    return f"{statistics.median(pair[which] for pair in latencies) * 1000:.1f} ms"


def p50_ms(call: Callable[[], Any], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def read_figures(stack: Stack, times: int = 40) -> dict[str, float]:
    """list p50 per filter and detail p50, in ms."""
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _, page = stack.request("GET", "/api/automations/runs?pageSize=100")
    ids = [run["id"] for run in page["runs"]]
    filters = {
        "none": "",
        "automationName": f"&automationName={AUTOMATION}",
        "status": "&status=completed",
        "status×2": "&status=completed&status=failed",
        "triggerType": "&triggerType=manual",
        "automationName+status": f"&automationName={AUTOMATION}&status=completed",
        "since": f"&since={since}",
        "replayOf": f"&replayOf={ids[0]}",
    }
    figures = {}
    for name, query in filters.items():
        path = f"/api/automations/runs?pageSize=20{query}"
        figures[f"list {name}"] = p50_ms(lambda p=path: _ok(stack.request("GET", p)), times)
    picks = iter(ids * (times // len(ids) + 1))
    figures["detail"] = p50_ms(
        lambda: _ok(stack.request("GET", f"/api/automations/runs/{next(picks)}")), times)
    return figures


def _ok(answer: tuple[int, Any]) -> Any:
    status, body = answer
    if status != 200:
        raise SystemExit(f"read answered {status}: {body}")
    return body


def seed(db: Path, automations: Path, until: int) -> tuple[int, float]:
    """Write completed runs (3 steps each) straight into the stopped stack's database until it
    holds `until`, in bulk (bench/bulk.py: the rows `create_run` writes, count triggers
    included, 20,000 per transaction, indexes built once afterwards); returns (runs written,
    seconds)."""
    os.environ.update({"RUNS_BACKEND": "sqlite", "RUNS_DB": str(db),
                       "AUTOMATIONS_DIR": str(automations)})
    from chalicelib.bootstrap import container
    from chalicelib.domain.model import Run, RunFilter, Step
    from chalicelib.domain.statuses import RunStatus, StepStatus

    from .bulk import bulk_insert

    deps = container()
    have = deps.repo.count_runs(RunFilter())
    # The stored definition of a run the stack made, so seeded runs reference the same one.
    definition = deps.repo.list_runs(RunFilter(automation_name=AUTOMATION), limit=1).runs[0]\
        .definition
    repo = deps.repo.inner  # past the redactor: seeded runs hold no secrets
    start = datetime.now(timezone.utc) - timedelta(days=20)
    started = time.perf_counter()
    written = bulk_insert(repo, repo.db.connection(), (
        _seed_run(Run, Step, RunStatus, StepStatus, definition,
                  start + timedelta(seconds=i * 15), i) for i in range(until - have)))
    return written, time.perf_counter() - started


def _seed_run(Run, Step, RunStatus, StepStatus, definition, at, i):  # noqa: N803
    automation, trigger = (AUTOMATION, "manual") if i % 3 else ("bench-other", "webhook")
    status = RunStatus.FAILED if i % 10 == 0 else RunStatus.COMPLETED
    run = Run(id=str(uuid.uuid4()), automation_name=automation, status=status,
              trigger_type=trigger, trigger_data={"n": i}, created_at=at, definition=definition,
              started_at=at, completed_at=at + timedelta(milliseconds=20))
    steps = [Step(index=k, name=name, type="data", operator="set", status=StepStatus.COMPLETED,
                  started_at=at, completed_at=at, attempt=1, output={"n": i})
             for k, name in enumerate("abc")]
    return run, steps


_started: list[Stack] = []


def main() -> None:
    """Run the bench; whatever happens, stop the stacks it started and remove its files."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="runs-bench-"))
    try:
        bench(work)
    finally:
        for stack in _started:
            if stack.process.poll() is None:
                stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def bench(work: Path) -> None:
    """Every figure, in order: fresh database, ~1,000 runs, 10,000 runs, 100,000 runs."""
    total_runs = int(os.environ.get("BENCH_RUNS", "10000"))
    seed_to = int(os.environ.get("BENCH_SEED_TO", "100000"))
    automations = work / "automations"
    automations.mkdir()
    (automations / "bench.yaml").write_text(AUTOMATIONS)
    db = work / "runs.db"
    out: list[tuple[str, str, str]] = []

    stack = Stack(db, automations)
    print(f"local stack (sqlite) on port {stack.port}, database {db}", flush=True)
    drive(stack, 1, 20)  # warm-up
    cpu = stack.cpu_seconds()
    single_rate, single = drive(stack, 1, 200)
    out.append(("stack CPU per run, 1 client", f"{(stack.cpu_seconds() - cpu) / 200 * 1000:.1f} ms",
                "(all threads)"))
    out.append(("completed runs/s, 1 client", f"{single_rate:.1f}", "≥ 50"))
    out.append(("trigger → completed p50, 1 client (recorded)", _p50(single, 1), "≤ 50 ms"))
    out.append(("trigger → completed p50, 1 client (seen by a poll)", _p50(single, 0),
                f"(+ up to {POLL_S * 1000:.0f} ms polling)"))
    first_rate, _ = drive(stack, 8, 780)
    for name, value in read_figures(stack).items():
        out.append((f"{name} p50 @ 1,000 runs", f"{value:.1f} ms",
                    "≤ 5 ms" if name == "detail" else "≤ 10 ms"))
    remaining = max(0, total_runs - 1000)
    rate, latencies = drive(stack, 8, remaining) if remaining else (first_rate, [])
    out.insert(1, ("completed runs/s, 8 clients", f"{rate:.1f}", "≥ 100"))
    if latencies:
        out.insert(2, ("trigger → completed p50, 8 clients (recorded)", _p50(latencies, 1),
                       "(saturated)"))
    out.append((f"stack RSS after {total_runs:,} runs", f"{stack.rss_mb():.0f} MB", "≤ 300 MB"))
    time.sleep(5)
    cpu, wall = stack.cpu_seconds(), time.monotonic()
    time.sleep(30)
    idle = (stack.cpu_seconds() - cpu) / (time.monotonic() - wall) * 100
    out.append(("idle CPU (30 s)", f"{idle:.2f} % of a core", "≤ 1 %"))
    stack.stop()

    written, took = seed(db, automations, seed_to)
    print(f"seeded {written:,} runs straight into the database in {took:.0f} s", flush=True)
    stack = Stack(db, automations)
    for name, value in read_figures(stack).items():
        out.append((f"{name} p50 @ {seed_to:,} runs", f"{value:.1f} ms",
                    "≤ 5 ms" if name == "detail" else "≤ 10 ms"))
    out.append((f"stack RSS after restart on {seed_to:,} runs", f"{stack.rss_mb():.0f} MB",
                "≤ 300 MB"))
    stack.stop()

    width = max(len(name) for name, _, _ in out)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nLocal stack figures ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, load average {load}, `make bench`)")
    for name, value, target in out:
        print(f"  {name:<{width}}  {value:>18}   target {target}")


if __name__ == "__main__":
    main()
