"""Frozen settings read once from the environment: the only reader of os.environ."""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
# `make package` copies the definitions it ships here (git-ignored); a deployed function reads
# them from its package. Locally and in tests AUTOMATIONS_DIR names the folder instead.
PACKAGED_AUTOMATIONS = str(Path(__file__).resolve().parent / "packaged_automations")
EXAMPLE_AUTOMATIONS = str(PROJECT_DIR / "examples")
USER_AUTOMATIONS = str(PROJECT_DIR / "automations")
DEFAULT_RUNS_DB = str(PROJECT_DIR / ".runs" / "runs.db")
# Where runs, steps, markers, tokens and slots live: DynamoDB ("aws", deployed; "moto", the
# local AWS emulation) or one SQLite file (RUNS_DB) on a single machine.
BACKENDS = ("aws", "moto", "sqlite")


SECRET_ENV_PREFIX = "RUNS_SECRET_"
_PROCESS_KEY = secrets.token_bytes(32)
SECRETS_BACKENDS = ("env", "ssm", "secretsmanager")


def _secrets_backend(value: str | None) -> str:
    backend = (value or "env").strip().lower()
    if backend not in SECRETS_BACKENDS:
        raise ValueError(f"SECRETS_BACKEND must be one of {', '.join(SECRETS_BACKENDS)}")
    return backend


def _bounded_int(value: str | None, default: int, name: str, low: int, high: int) -> int:
    number = int(value) if value not in (None, "") else default
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    region: str = "us-east-1"
    stage: str = "dev"
    runs_table: str = "automation-runs"
    step_queue: str = "automation-runs-steps"
    step_dlq: str = "automation-runs-steps-dlq"
    # FIFO, so a repeated send of a run's exhausted message (same deduplication id) is dropped.
    exhausted_queue: str = "automation-runs-exhausted.fifo"
    payload_bucket: str = "automation-runs-payloads"
    automations_dir: str = PACKAGED_AUTOMATIONS
    retention_days: int = 30
    allow_private_http: bool = False
    # Trigger data and step outputs whose JSON is larger go to S3 (DynamoDB allows 400 KB an
    # item, but every write is billed per started KB of the item, so big values are moved out
    # early: a run item is rewritten on each transition).
    item_budget_bytes: int = 16 * 1024
    max_trigger_bytes: int = 256 * 1024
    # An http action's response body over this size fails the attempt (not retried): the
    # body is held in the executor's memory and stored as the step output.
    http_max_response_bytes: int = 1024 * 1024
    executor_timeout_s: int = 900
    dev_token: str | None = None
    # Where `{{secrets.NAME}}` is read: env (RUNS_SECRET_<NAME>, local use), ssm or
    # secretsmanager (the SecureStrings / secrets under `secrets_path`, cached `max_age` s).
    secrets_backend: str = "env"
    secrets_path: str = "/automation-runs/secrets/"
    secrets_max_age_s: int = 300
    # Signs list cursors (HMAC). Deployed: the stack's id (unknown to callers, the same in every
    # function instance); locally a random key per process.
    cursor_key: bytes = _PROCESS_KEY
    # Powertools' service (the stack's name when deployed: a dimension of every metric) and
    # the metrics namespace.
    service: str = "automation-runs"
    metrics_namespace: str = "AutomationRuns"
    backend: str = "aws"
    runs_db: str = DEFAULT_RUNS_DB
    # Bulk replay/cancel: runs a batch works through per second (one page of this many per
    # worker message, the next message a second later), and the most runs one batch takes.
    bulk_rate_per_s: int = 10
    bulk_max_runs: int = 10_000

    @property
    def uses_sqlite(self) -> bool:
        """True when the stores are the SQLite adapters (RUNS_BACKEND=sqlite)."""
        return self.backend == "sqlite"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from environment variables (defaults above when unset)."""
        env = os.environ if environ is None else environ
        backend = (env.get("RUNS_BACKEND") or cls.backend).strip().lower()
        if backend not in BACKENDS:
            raise ValueError(f"RUNS_BACKEND: {backend!r} is not one of {', '.join(BACKENDS)}")
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            stage=env.get("RUNS_STAGE", cls.stage),
            runs_table=env.get("RUNS_TABLE", cls.runs_table),
            step_queue=env.get("STEP_QUEUE", cls.step_queue),
            step_dlq=env.get("STEP_DLQ", cls.step_dlq),
            exhausted_queue=env.get("EXHAUSTED_QUEUE", cls.exhausted_queue),
            payload_bucket=env.get("PAYLOAD_BUCKET", cls.payload_bucket),
            automations_dir=env.get("AUTOMATIONS_DIR") or PACKAGED_AUTOMATIONS,
            retention_days=int(env.get("RUN_RETENTION_DAYS", cls.retention_days)),
            allow_private_http=_flag(env.get("ALLOW_PRIVATE_HTTP")),
            item_budget_bytes=int(env.get("ITEM_BUDGET_BYTES", cls.item_budget_bytes)),
            executor_timeout_s=int(env.get("EXECUTOR_TIMEOUT_S", cls.executor_timeout_s)),
            http_max_response_bytes=int(env.get("HTTP_MAX_RESPONSE_BYTES",
                                                cls.http_max_response_bytes)),
            dev_token=env.get("RUNS_DEV_TOKEN") or None,
            secrets_backend=_secrets_backend(env.get("SECRETS_BACKEND")),
            secrets_path=env.get("SECRETS_PATH") or cls.secrets_path,
            secrets_max_age_s=int(env.get("SECRETS_MAX_AGE_S") or cls.secrets_max_age_s),
            cursor_key=(env.get("CURSOR_KEY") or "").encode() or _PROCESS_KEY,
            service=env.get("POWERTOOLS_SERVICE_NAME") or cls.service,
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or cls.metrics_namespace,
            backend=backend,
            runs_db=env.get("RUNS_DB") or cls.runs_db,
            bulk_rate_per_s=_bounded_int(env.get("BULK_RATE_PER_S"), cls.bulk_rate_per_s,
                                         "BULK_RATE_PER_S", 1, 100),
            bulk_max_runs=_bounded_int(env.get("BULK_MAX_RUNS"), cls.bulk_max_runs,
                                       "BULK_MAX_RUNS", 1, 100_000),
        )

    def secret(self, name: str) -> str | None:
        """A secret's value from the environment (`RUNS_SECRET_<NAME>`), read at execution."""
        return os.environ.get(f"{SECRET_ENV_PREFIX}{name}")

    def env_secrets(self) -> dict[str, str]:
        """Every `RUNS_SECRET_<NAME>` variable: name → value (read now, not at cold start)."""
        # The redactor asks on every run write and log line: look at the environment's raw
        # bytes and decode only the matches (os.environ.items() decodes every variable, 60 µs
        # for 40 of them; this is a tenth of that).
        raw = getattr(os.environ, "_data", None)  # bytes → bytes where the OS has bytes
        if not os.supports_bytes_environ or not isinstance(raw, dict):
            return {key[len(SECRET_ENV_PREFIX):]: value for key, value in os.environ.items()
                    if key.startswith(SECRET_ENV_PREFIX) and value}
        prefix = os.fsencode(SECRET_ENV_PREFIX)
        return {os.fsdecode(key[len(prefix):]): os.fsdecode(value)
                for key, value in raw.items() if key.startswith(prefix) and value}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this cold start."""
    return Settings.from_env()


@dataclass(frozen=True)
class ClientSettings:
    """Where the `runs` CLI finds the HTTP API, and the bearer token it sends."""

    url: str = "http://127.0.0.1:8000"
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ClientSettings":
        """`RUNS_URL` and `RUNS_TOKEN` (defaults above when unset)."""
        env = os.environ if environ is None else environ
        return cls(url=(env.get("RUNS_URL") or cls.url).rstrip("/"),
                   token=env.get("RUNS_TOKEN") or None)
