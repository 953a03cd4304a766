"""Cost per step on AWS, measured on moto: `python -m bench.cost` (`make bench`).

Runs 1-, 3- and 10-step `data/set` automations, one whose middle step fails once and is
retried, and one with a `delay/wait`, each triggered through the API handler and executed by
the `execute_steps` handler fed from the (moto) step queue, as Lambda would. Every AWS
request is counted by service and operation (bench/meter.py), DynamoDB capacity is computed
by DynamoDB's rules, and the counter function's share is measured on a batch of the run's own
stream records at the size Lambda would hand it at 1 run/s and at 100 runs/s. CPU time of the
handlers (moto's own time left out) gives Lambda duration at the template's memory size.
Prices: bench/prices.py. Writes bench/results.json and prints the figures, then every item
write of one 3-step and one 10-step run (which item, its units, each index entry put, updated
or moved) and the counter batch's share, so a cut can aim at the biggest part.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import sys
import tempfile
import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false",
    "POWERTOOLS_METRICS_NAMESPACE": "AutomationRuns",
    "AUTOMATIONS_DIR": str(ROOT / "examples"),
})
for _var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
             "AWS_PROFILE", "RUNS_DEV_TOKEN"):
    os.environ.pop(_var, None)

from . import prices  # noqa: E402
from .meter import AwsMeter, Usage  # noqa: E402

METER = AwsMeter().install()  # before any botocore session exists
OUT = sys.stdout


class LogCounter(io.TextIOBase):
    """Stands in for stdout/stderr: while capturing, counts what a function would send to
    CloudWatch Logs (and the EMF metric records in it); otherwise passes text through."""

    def __init__(self, passthrough) -> None:
        self.passthrough = passthrough
        self.capturing = False
        self.bytes = 0
        self.metric_records = 0
        self.metrics: set[tuple] = set()  # distinct (namespace, name, dimensions)
        self._partial = ""

    def write(self, text: str) -> int:
        if not self.capturing:
            return self.passthrough.write(text)
        self.bytes += len(text.encode())
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if '"_aws"' in line:
                self._metric(line)
        return len(text)

    def _metric(self, line: str) -> None:
        record = json.loads(line)
        self.metric_records += 1
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    self.metrics.add((directive["Namespace"], metric["Name"],
                                      tuple((d, record.get(d)) for d in dimensions)))

    def flush(self) -> None:
        self.passthrough.flush()


LOGS = LogCounter(sys.stdout)
sys.stdout = LOGS  # before Powertools' Logger binds its stream
sys.stderr = LogCounter(sys.stderr)

import boto3  # noqa: E402
import yaml  # noqa: E402
from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

STEP_WORDS = {"1": 1, "3": 3, "10": 10}
AUTOMATIONS = """
automations:
  - name: set-1
    trigger: { type: manual }
    actions: &set1
      - {name: s0, type: data, operator: set, props: {value: {n: 0, id: "{{trigger.data.id}}"}}}
  - name: set-3
    trigger: { type: manual }
    actions: &set3
      - {name: s0, type: data, operator: set, props: {value: {n: 0, id: "{{trigger.data.id}}"}}}
      - {name: s1, type: data, operator: set, props: {value: {n: 1, prev: "{{steps.s0.n}}"}}}
      - {name: s2, type: data, operator: set, props: {value: {n: 2, prev: "{{steps.s1.n}}"}}}
  - name: set-10
    trigger: { type: manual }
    actions:
%(ten)s
  - name: retry
    trigger: { type: manual }
    actions:
      - {name: s0, type: data, operator: set, props: {value: {n: 0, id: "{{trigger.data.id}}"}}}
      - name: flaky
        type: http
        operator: post
        retry: {maxAttempts: 3, delayMs: 1000}
        props: {url: "%(flaky)s", body: {id: "{{trigger.data.id}}"}}
      - {name: s2, type: data, operator: set, props: {value: {n: 2, prev: "{{steps.s0.n}}"}}}
  - name: wait
    trigger: { type: manual }
    actions:
      - {name: s0, type: data, operator: set, props: {value: {n: 0, id: "{{trigger.data.id}}"}}}
      - {name: pause, type: delay, operator: wait, props: {ms: 1000}}
      - {name: s2, type: data, operator: set, props: {value: {n: 2, prev: "{{steps.s0.n}}"}}}
"""
WRITE_BREAKDOWN = ("3", "10")  # runs whose every item write is printed
SCENARIOS = {"1": "set-1", "3": "set-3", "10": "set-10", "retry": "retry", "wait": "wait"}
REPEATS = int(os.environ.get("BENCH_REPEATS", 2))  # measured runs per scenario, after a warm-up
RATES = (1, 100)  # runs per second


# --- the template's figures the model depends on ----------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    pass


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@dataclass(frozen=True)
class Template:
    memory_mb: dict[str, int]
    stream_batch_size: int
    stream_window_s: float
    stream_filters: list[dict]
    executor_batch_size: int


def read_template() -> Template:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    default = config.get("lambda_memory_size", 128)
    functions = config.get("lambda_functions", {})
    memory = {name: functions.get(name, {}).get("lambda_memory_size", default)
              for name in ("api_handler", "execute_steps", "count_runs")}
    resources = yaml.load((ROOT / "infra" / "resources.yaml").read_text(),
                          Loader=_CfnLoader)["Resources"]
    mapping = resources["CountRunsStreamMapping"]["Properties"]
    filters = [json.loads(f["Pattern"]) for f in
               (mapping.get("FilterCriteria") or {}).get("Filters", [])]
    source = (ROOT / "chalicelib" / "handlers" / "entrypoints.py").read_text()
    batch = re.search(r"queue=_settings\.step_queue, batch_size=(\d+)", source)
    return Template(memory, int(mapping.get("BatchSize", 100)),
                    float(mapping.get("MaximumBatchingWindowInSeconds", 0)), filters,
                    int(batch.group(1)) if batch else 10)


def matches_filter(record: dict, pattern: Any) -> bool:
    """Lambda event filtering (the subset the template may use: exact values, exists)."""
    if isinstance(pattern, list):
        for option in pattern:
            if isinstance(option, dict) and "exists" in option:
                if (record is not None) == option["exists"]:
                    return True
            elif record == option:
                return True
        return False
    if not isinstance(record, dict):
        return False
    return all(matches_filter(record.get(key), sub) for key, sub in pattern.items())


# --- measuring -----------------------------------------------------------------------------------
@dataclass
class Invocation:
    """One Lambda invocation: its function, CPU time without moto, and its AWS requests."""

    function: str
    cpu_s: float
    usage: Usage

    def billed_ms(self) -> int:
        stretch = prices.LAMBDA_MB_PER_VCPU / TEMPLATE.memory_mb[self.function]
        waiting = sum(n * prices.AWS_REQUEST_WAIT_MS.get(service,
                                                          prices.AWS_REQUEST_WAIT_MS_DEFAULT)
                      for (service, _), n in self.usage.requests.items())
        return max(1, math.ceil(self.cpu_s * 1000 * max(1.0, stretch) + waiting))

    def gb_seconds(self) -> float:
        return self.billed_ms() / 1000 * TEMPLATE.memory_mb[self.function] / 1024


@contextmanager
def invocation(function: str, into: list[Invocation]):
    """Measure one handler call as one Lambda invocation (logs counted, moto CPU removed)."""
    before, started = METER.snapshot(), time.process_time()
    LOGS.capturing = sys.stderr.capturing = True
    try:
        yield
    finally:
        LOGS.capturing = sys.stderr.capturing = False
        usage = METER.snapshot().minus(before)
        cpu = time.process_time() - started - usage.moto_cpu_s
        into.append(Invocation(function, max(0.0, cpu), usage))


@dataclass
class RunCost:
    """What one run cost, outside the counter function (measured apart, per rate)."""

    steps: int
    invocations: list[Invocation] = field(default_factory=list)
    log_bytes: int = 0
    metric_records: int = 0
    metrics: int = 0  # distinct custom metrics its records name
    stream_records: list[dict] = field(default_factory=list)
    writes: list = field(default_factory=list)  # meter.WriteTrace of every item written

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.invocations:
            total.add(call.usage)
        return total


class Bench:
    """moto with the template's resources, the app's handlers, and a flaky HTTP endpoint."""

    def __init__(self, workdir: Path) -> None:
        from chalicelib.local.atomic import make_moto_dynamodb_atomic  # noqa: PLC0415
        from chalicelib.local.resources import create_resources  # noqa: PLC0415
        from tests.support.http_sink import HttpSink  # noqa: PLC0415

        make_moto_dynamodb_atomic()
        self._mock = mock_aws()
        self._mock.start()
        with METER.paused():
            create_resources(boto3.Session(region_name="us-east-1"))
        self.sink = HttpSink().__enter__()
        self.workdir = workdir
        self.deps = self._install()
        import app  # noqa: PLC0415 - after the environment and the container

        self.app = app.app
        self.client = Client(self.app).__enter__()
        from chalicelib.adapters.counters import StreamPoller  # noqa: PLC0415
        from chalicelib.services.tokens import create_token  # noqa: PLC0415

        self.poller = StreamPoller(self.deps.settings)
        with METER.paused():
            _, secret = create_token(self.deps.tokens, "operator", self.deps.clock())
            self.poller.fetch()
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def _install(self):
        from dataclasses import replace  # noqa: PLC0415

        from chalicelib.actions.registry import default_registry  # noqa: PLC0415
        from chalicelib.bootstrap import Container, use_container  # noqa: PLC0415
        from chalicelib.domain.definitions import load_catalog  # noqa: PLC0415
        from chalicelib.settings import Settings  # noqa: PLC0415

        ten = "\n".join(
            f"      - {{name: s{i}, type: data, operator: set, props: {{value: {{n: {i}, "
            f"prev: \"{{{{steps.s{i - 1}.n}}}}\"}}}}}}" if i else
            "      - {name: s0, type: data, operator: set, props: {value: {n: 0, "
            "id: \"{{trigger.data.id}}\"}}}" for i in range(10))
        folder = self.workdir / "automations"
        folder.mkdir()
        (folder / "bench.yaml").write_text(textwrap.dedent(AUTOMATIONS) % {
            "ten": ten, "flaky": self.sink.url + "/flaky"})
        settings = replace(Settings.from_env(), allow_private_http=True)
        deps = Container(settings=settings, overrides={
            "catalog": load_catalog(folder, default_registry())})
        use_container(deps)
        return deps

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.sink.__exit__(None, None, None)
        self._mock.stop()

    def run(self, automation: str, steps: int) -> RunCost:
        """Trigger one run through the API and execute it through the step handler."""
        cost = RunCost(steps=steps)
        logs_before, records_before = LOGS.bytes, LOGS.metric_records
        LOGS.metrics = set()
        if automation == "retry":
            self.sink.fail("/flaky", status=503, times=1)
        with METER.tracing() as cost.writes:
            run_id = self._execute(automation, cost)
        status = self.deps.repo.get_run(run_id).status.value
        assert status == "completed", f"{automation} ended {status}"
        cost.log_bytes = LOGS.bytes - logs_before
        cost.metric_records = LOGS.metric_records - records_before
        cost.metrics = len(LOGS.metrics)
        with METER.paused():
            cost.stream_records = [r for batch in self.poller.fetch().values() for r in batch]
        return cost

    def _execute(self, automation: str, cost: RunCost) -> str:
        from chalicelib.domain.statuses import TERMINAL  # noqa: PLC0415
        from chalicelib.local.pollers import failed_message_ids, lambda_context, sqs_event  # noqa: PLC0415,E501

        with invocation("api_handler", cost.invocations):
            response = self.client.http.post(
                f"/api/automations/{automation}/trigger", headers=self.headers,
                body=json.dumps({"triggerData": {"id": "order-1234"}}))
        assert response.status_code == 202, response.body
        run_id = json.loads(response.body)["id"]
        handler, queue = self.app.handler_map["execute_steps"], self.deps.step_queue
        deadline = time.monotonic() + 60
        while True:
            with METER.paused():
                messages = queue.receive(max_messages=1, wait_seconds=1)
                ended = self.deps.repo.get_run(run_id).status in TERMINAL
            if not messages:
                if ended:
                    break
                assert time.monotonic() < deadline, f"{automation} run did not end"
                continue
            event = sqs_event(messages, queue.arn, self.deps.settings.region)
            with invocation("execute_steps", cost.invocations):
                result = handler(event, lambda_context("execute_steps", 900)())
            assert not failed_message_ids(result), result
            with METER.paused():
                queue.delete(messages[0]["ReceiptHandle"])
        return run_id

    def counter_batch(self, records: list[dict]) -> Invocation:
        """Apply one Lambda batch of stream records through the count_runs handler."""
        from chalicelib.local.pollers import lambda_context  # noqa: PLC0415

        handler = self.app.handler_map["count_runs"]
        calls: list[Invocation] = []
        with METER.tracing() as writes, invocation("count_runs", calls):
            handler({"Records": records}, lambda_context("count_runs", 60)())
        self.counter_writes = writes
        return calls[0]


# --- the model: per step, at a rate --------------------------------------------------------------
@dataclass
class Figures:
    write_units: float
    read_units: float
    sqs_requests: float
    lambda_invocations: float
    gb_seconds: float
    log_bytes: float
    usd: dict[str, float]

    @property
    def total_usd(self) -> float:
        return sum(self.usd.values())


def counter_share(bench: Bench, cost: RunCost, rate: float, serial: list[int]) -> tuple[
        Invocation, float]:
    """The counter function's cost per run at `rate` runs/s: one batch as Lambda would cut it
    (BatchSize records, or what arrives within the batching window), built from this run's
    own stream records (after the mapping's filter), applied through the handler."""
    delivered = [r for r in cost.stream_records
                 if not TEMPLATE.stream_filters
                 or any(matches_filter(r, f) for f in TEMPLATE.stream_filters)]
    per_run = len(delivered)
    if per_run == 0:
        return Invocation("count_runs", 0.0, Usage()), 0.0
    arriving = rate * per_run * max(TEMPLATE.stream_window_s, 1 / rate)
    batch_size = max(1, min(TEMPLATE.stream_batch_size, math.floor(arriving)))
    batch = []
    while len(batch) < batch_size:
        for record in delivered[:batch_size - len(batch)]:
            serial[0] += 1
            change = dict(record["dynamodb"], SequenceNumber=str(serial[0]).zfill(21))
            batch.append(dict(record, dynamodb=change, eventID=f"bench-{serial[0]}"))
    call = bench.counter_batch(batch)
    return call, batch_size / per_run  # runs per batch


def figures(bench: Bench, cost: RunCost, rate: float, serial: list[int]) -> Figures:
    counter, runs_per_batch = counter_share(bench, cost, rate, serial)
    share = 1 / runs_per_batch if runs_per_batch else 0.0
    usage = cost.usage
    steps = cost.steps
    wcu = usage.write_units + counter.usage.write_units * share
    rcu = usage.read_units + counter.usage.read_units * share
    # SQS: the app's sends (counted), plus the event source's receives and deletes.
    sent = usage.count("sqs")
    messages = sum(1 for call in cost.invocations if call.function == "execute_steps")
    per_second = rate * messages
    per_receive = min(prices.SQS_MAX_MESSAGES_PER_RECEIVE,
                      max(1.0, per_second / prices.SQS_IDLE_POLLERS))
    deletes = messages / TEMPLATE.executor_batch_size
    idle = (prices.SQS_IDLE_POLLERS * prices.SQS_IDLE_RECEIVES_PER_POLLER_PER_MINUTE / 60) / rate
    sqs = sent + messages / per_receive + deletes + idle
    invocations = len(cost.invocations) + share
    gb_s = sum(call.gb_seconds() for call in cost.invocations) + counter.gb_seconds() * share
    invocation_logs = len(cost.invocations) * prices.LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION
    log_bytes = cost.log_bytes + invocation_logs + share * (
        prices.LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION)
    steps_per_month = rate * prices.SECONDS_PER_MONTH * steps
    # Custom metrics cost per metric and month: spread over a month of this automation's steps.
    metrics_per_step = cost.metrics * prices.CLOUDWATCH_USD_PER_METRIC_MONTH / steps_per_month
    usd = {
        "dynamodb": wcu * prices.DYNAMODB_USD_PER_WRITE_UNIT
        + rcu * prices.DYNAMODB_USD_PER_READ_UNIT,
        "sqs": sqs * prices.SQS_USD_PER_REQUEST,
        "lambda": invocations * prices.LAMBDA_USD_PER_REQUEST
        + gb_s * prices.LAMBDA_USD_PER_GB_SECOND,
        "logs": log_bytes / 1e9 * prices.CLOUDWATCH_LOGS_USD_PER_GB,
        "metrics": metrics_per_step * steps,
    }
    return Figures(wcu / steps, rcu / steps, sqs / steps, invocations / steps, gb_s / steps,
                   log_bytes / steps, {k: v / steps * 1e6 for k, v in usd.items()})


def average(items: list[Figures]) -> Figures:
    n = len(items)
    keys = items[0].usd
    return Figures(*(sum(getattr(f, name) for f in items) / n for name in (
        "write_units", "read_units", "sqs_requests", "lambda_invocations", "gb_seconds",
        "log_bytes")), {k: sum(f.usd[k] for f in items) / n for k in keys})


# --- report ------------------------------------------------------------------------------------
def main() -> None:
    global TEMPLATE
    TEMPLATE = read_template()
    started = time.monotonic()
    results: dict[str, Any] = {"runs": {}}
    breakdown: dict[str, dict] = {}
    writes: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        serial = [0]
        try:
            for label, automation in SCENARIOS.items():
                steps = len(bench.deps.catalog.get(automation).to_dict()["actions"])
                bench.run(automation, steps)  # warm-up: cold start, definition stored once
                costs = [bench.run(automation, steps) for _ in range(REPEATS)]
                by_rate = {rate: average([figures(bench, c, rate, serial) for c in costs])
                           for rate in RATES}
                usage = costs[-1].usage
                if label in WRITE_BREAKDOWN:
                    _, runs_per_batch = counter_share(bench, costs[-1], RATES[0], serial)
                    writes[label] = (costs[-1].writes, bench.counter_writes, runs_per_batch)
                breakdown[label] = {
                    "dynamodb": usage.by_operation("dynamodb"), "sqs": usage.by_operation("sqs"),
                    "other": {f"{svc}:{op}": n for (svc, op), n in usage.requests.items()
                              if svc not in ("dynamodb", "sqs")},
                    "write_units_run": usage.write_units,
                    "index_write_units_run": usage.index_write_units,
                    "read_units_run": usage.read_units,
                    "invocations": Counter(c.function for c in costs[-1].invocations),
                    "by_function": _by_function(costs[-1].invocations),
                    "metrics": costs[-1].metrics,
                    "stream_records": len(costs[-1].stream_records),
                    "metric_records": costs[-1].metric_records,
                }
                worst = max(by_rate.values(), key=lambda f: f.total_usd)
                results["runs"][label] = {
                    "steps": steps,
                    "dynamodb_write_units_per_step": round(
                        max(f.write_units for f in by_rate.values()), 3),
                    "dynamodb_read_units_per_step": round(
                        max(f.read_units for f in by_rate.values()), 3),
                    "sqs_requests_per_step": round(worst.sqs_requests, 3),
                    "lambda_invocations_per_step": round(worst.lambda_invocations, 3),
                    "usd_per_million_steps": round(worst.total_usd, 3),
                    "by_rate": {str(rate): _rate_json(f) for rate, f in by_rate.items()},
                }
        finally:
            bench.close()
    results["sfn_standard_usd_per_million_steps"] = prices.SFN_STANDARD_USD_PER_MILLION_STEPS
    results["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    results["prices"] = prices.PRICES_DATE
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results, breakdown, time.monotonic() - started)
    report_writes(writes)


def _by_function(calls: list[Invocation]) -> dict[str, str]:
    found: dict[str, Counter] = {}
    for call in calls:
        found.setdefault(call.function, Counter()).update(
            {op: n for (_, op), n in call.usage.requests.items()})
    return {name: ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))
            for name, ops in found.items()}


def _rate_json(f: Figures) -> dict[str, Any]:
    return {
        "dynamodb_write_units_per_step": round(f.write_units, 3),
        "dynamodb_read_units_per_step": round(f.read_units, 3),
        "sqs_requests_per_step": round(f.sqs_requests, 3),
        "lambda_invocations_per_step": round(f.lambda_invocations, 3),
        "lambda_gb_seconds_per_step": round(f.gb_seconds, 6),
        "log_bytes_per_step": round(f.log_bytes),
        "usd_per_million_steps": round(f.total_usd, 3),
        "usd_per_million_steps_by_service": {k: round(v, 3) for k, v in f.usd.items()},
    }


def report(results: dict, breakdown: dict, elapsed: float) -> None:
    print = lambda *a: OUT.write(" ".join(str(x) for x in a) + "\n")  # noqa: E731,A001
    print(f"Cost per step on AWS, measured on moto ({results['date']}; prices "
          f"{results['prices']}; bench/prices.py)")
    print(f"Step Functions Standard: ${results['sfn_standard_usd_per_million_steps']:.2f} "
          "per million steps (state transitions)\n")
    head = (f"{'run':<6}{'rate/s':>7}{'steps':>6}{'WCU/step':>10}{'RCU/step':>10}"
            f"{'SQS/step':>10}{'λ inv/step':>11}{'GB-s/step':>11}{'log B/step':>11}"
            f"{'$/M steps':>11}{'vs SFN':>8}")
    print(head)
    print("-" * len(head))
    for label, run in results["runs"].items():
        for rate, f in run["by_rate"].items():
            usd = f["usd_per_million_steps"]
            print(f"{label:<6}{rate:>7}{run['steps']:>6}"
                  f"{f['dynamodb_write_units_per_step']:>10.2f}"
                  f"{f['dynamodb_read_units_per_step']:>10.2f}"
                  f"{f['sqs_requests_per_step']:>10.2f}"
                  f"{f['lambda_invocations_per_step']:>11.2f}"
                  f"{f['lambda_gb_seconds_per_step']:>11.5f}"
                  f"{f['log_bytes_per_step']:>11}"
                  f"{usd:>11.2f}"
                  f"{results['sfn_standard_usd_per_million_steps'] / usd:>7.1f}x")
    print("\n$ per million steps by service (1 run/s | 100 runs/s):")
    for label, run in results["runs"].items():
        parts = []
        for service in ("dynamodb", "sqs", "lambda", "logs", "metrics"):
            low, high = (run["by_rate"][str(r)]["usd_per_million_steps_by_service"][service]
                         for r in RATES)
            parts.append(f"{service} {low:.2f}|{high:.2f}")
        print(f"  {label:<6} " + ", ".join(parts))
    print("\nRequests of one run outside the counter function (last measured run):")
    for label, b in breakdown.items():
        calls = "; ".join(f"{name} ({b['invocations'][name]}×): {ops}"
                          for name, ops in b["by_function"].items())
        print(f"  {label:<6} {calls}")
        print(f"  {'':<6} write units {b['write_units_run']:.0f} (indexes "
              f"{b['index_write_units_run']:.0f}), read units {b['read_units_run']:.1f}; "
              f"stream records {b['stream_records']}; metric records {b['metric_records']} "
              f"naming {b['metrics']} custom metrics")
    print(f"\nCounter function: stream batch {TEMPLATE.stream_batch_size} records or "
          f"{TEMPLATE.stream_window_s:g} s; filter {TEMPLATE.stream_filters or 'none'}.")
    print(f"API Gateway (not included: cron, calls and failure handlers have none): "
          f"${prices.API_GATEWAY_USD_PER_REQUEST * 1e6:.2f} per million triggers.")
    print(f"bench/results.json written; {elapsed:.0f} s")


def report_writes(writes: dict[str, tuple]) -> None:
    """Every item write of one run (same writes to consecutive steps folded), then the
    counter function's batch at the lowest rate and the share of it one run pays."""
    out = lambda text="": OUT.write(text + "\n")  # noqa: E731
    for label, (run_writes, counter_writes, runs_per_batch) in writes.items():
        total = sum(w.units for w in run_writes)
        out(f"\nWrite units of one {label}-step run, request by request ({total} WCU; item = "
            "table units, then each index entry put, updated or moved; n× = once per step):")
        groups: list[tuple[str | None, list[str]]] = []  # (step item or None, its lines)
        for write in run_writes:
            step = write.item if write.item.startswith("STEP#") else None
            line = re.sub(r"STEP#\d+", "STEP#n", write.describe())
            if step is not None and groups and groups[-1][0] == step:
                groups[-1][1].append(line)
            else:
                groups.append((step, [line]))
        folded: list[list] = []  # [lines, times]: the same writes to consecutive steps once
        for step, lines in groups:
            if step is not None and folded and folded[-1][0] == lines:
                folded[-1][1] += 1
            else:
                folded.append([lines, 1])
        for lines, times in folded:
            for line in lines:
                out(f"  {f'{times}× ' if times > 1 else '':>5}{line}")
        batch = sum(w.units for w in counter_writes)
        out(f"  counter batch at {RATES[0]} run/s: {batch} WCU for {runs_per_batch:g} runs "
            f"= {batch / runs_per_batch:.2f} WCU per run")
        for write in counter_writes:
            out(f"       {write.describe()}")


TEMPLATE: Template

if __name__ == "__main__":
    main()
