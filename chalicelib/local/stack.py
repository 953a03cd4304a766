"""The local stack: the backend (a SQLite file, or a moto server), resources, admin token,
API server, workers and scheduler.

`LocalStack(StackOptions.from_env()).start()` brings everything up in this process and
`stop()` takes it down again; `python -m chalicelib.local` wraps it for a terminal.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .emulator import (
    LOOPBACK,
    MotoEmulator,
    PortInUse,
    StackError,
    apply_environment,
    ensure_port_free,
    local_environment,
    restore_environment,
)
from .single_machine import (
    DatabaseLock,
    backend_of,
    create_queues,
    database_path,
    describe_resume,
    resume,
    sqlite_environment,
)

log = logging.getLogger("runs.local")

PROJECT_DIR = Path(__file__).resolve().parents[2]
# The stage `make package` builds: its per-function timeouts and memory apply locally too.
DEPLOYED_STAGE = "prod"
# Stopping waits this long for workers to finish their batch, then leaves the rest in flight.
STOP_GRACE_S = 3.0


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StackError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise StackError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class StackOptions:
    """What to start: backend, ports, the admin token and how many of each thread."""

    backend: str = "sqlite"  # or "moto": the AWS-emulated stack
    db_path: str = ""  # RUNS_DB, absolute ("" until from_env or the caller sets it)
    port: int = 8000
    moto_port: int = 0  # 0: any free port
    dev_token: str | None = None  # None: generate one
    workers: int = 2
    tick_seconds: int = 60  # 0: no scheduler (tests that must not see cron runs)
    wait_seconds: int = 2  # SQS long-poll time; also bounds how long shutdown waits
    stream_interval_s: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "StackOptions":
        """Options from RUNS_BACKEND, RUNS_DB, RUNS_PORT, RUNS_MOTO_PORT, RUNS_DEV_TOKEN,
        RUNS_WORKERS, RUNS_TICK_SECONDS."""
        return cls(
            backend=backend_of(env),
            db_path=database_path(env),
            port=_int(env, "RUNS_PORT", cls.port, 0),
            moto_port=_int(env, "RUNS_MOTO_PORT", cls.moto_port, 0),
            dev_token=env.get("RUNS_DEV_TOKEN") or None,
            workers=_int(env, "RUNS_WORKERS", cls.workers, 1),
            tick_seconds=_int(env, "RUNS_TICK_SECONDS", cls.tick_seconds, 0),
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class LocalStack:
    """Everything `make run` starts, in this process. Usable as a context manager."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.backend = self.options.backend
        self.db_path = self.options.db_path or database_path({})
        self.emulator = MotoEmulator(self.options.moto_port) if self.backend == "moto" else None
        self._db_lock = DatabaseLock(self.db_path) if self.backend == "sqlite" else None
        self.resumed: str | None = None
        self._queues: dict[str, Any] | None = None
        self.stop_event = threading.Event()
        self.port = self.options.port or _free_port()
        self.token: str | None = None
        self.threads: list[threading.Thread] = []
        self._api = None
        self._api_thread: threading.Thread | None = None
        self._chalice_config = None
        self._previous_env: dict[str, str | None] | None = None

    @property
    def url(self) -> str:
        """The API's base URL (routes live under /api)."""
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> "LocalStack":
        """Start every part; on failure, stop what already started and re-raise."""
        try:
            ensure_port_free(self.port, "RUNS_PORT")
            self._previous_env = apply_environment(self._backend_environment())
            self._reset_cold_start()
            app = _import_app()
            self._bind_api(app)
            queues = self._create_resources()
            self.token = self._register_token()
            if queues is not None:
                self._resume(queues)
            self._start_threads(app)
            self._api_thread = threading.Thread(target=self._api.server.serve_forever,
                                                name="api", daemon=True)
            self._api_thread.start()
            log.info("API on %s", self.url)
        except BaseException:
            self.stop()
            raise
        return self

    def _backend_environment(self) -> dict[str, str]:
        if self.emulator is not None:
            endpoint = self.emulator.start()
            log.info("moto server on %s", endpoint)
            return {**local_environment(endpoint, self.url, os.environ), "RUNS_BACKEND": "moto"}
        self._db_lock.acquire()
        log.info("database %s", self.db_path)
        return sqlite_environment(self.db_path, self.url, os.environ)

    def stop(self) -> list[str]:
        """Stop the API, then the workers (each finishes its batch within a few seconds or is
        left in flight, its messages released for the next start); safe to call twice.
        Returns one line per thing left in flight."""
        deadline = time.monotonic() + STOP_GRACE_S
        self.stop_event.set()
        if self._api is not None:
            if self._api_thread is not None:
                self._api.shutdown()
            self._api.server.server_close()
            self._api = None
        left: list[str] = []
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                left += self._left_behind(thread)
        self.threads = []
        left += self._waiting()
        if self.emulator is not None:
            self.emulator.stop()
        if self._previous_env is not None:
            restore_environment(self._previous_env)
            self._previous_env = None
            self._reset_cold_start()
        if self._db_lock is not None:
            self._db_lock.release()
        return left

    def _left_behind(self, thread: threading.Thread) -> list[str]:
        """What a thread still busy at the deadline leaves; its messages are released."""
        release = getattr(thread, "release_unfinished", None)
        if release is None:
            return [f"{thread.name} was still running"]
        kept = "kept for the next start" if self.backend == "sqlite" else "lost with moto"
        return [f"run {body.get('runId')} ({thread.name} was executing it; its message is "
                f"{kept})"
                for body in release()]

    def _waiting(self) -> list[str]:
        """Delayed and queued step messages (waits, retries) left in the backend."""
        if not self._queues:
            return []
        from ..settings import get_settings

        counts = self._queues[get_settings().step_queue].counts()
        waiting = counts["delayed"] + counts["visible"] + counts["inFlight"]
        if not waiting:
            return []
        return [f"{waiting} step message(s) (delays, retries, queued steps) kept in "
                f"{self.db_path} for the next start"]

    @staticmethod
    def _reset_cold_start() -> None:
        """Forget cached settings and clients, as a new Lambda cold start would."""
        from ..bootstrap import use_container
        from ..settings import get_settings

        get_settings.cache_clear()
        use_container(None)

    def _bind_api(self, app: Any) -> None:
        from chalice.config import Config
        from chalice.deploy.validate import validate_routes

        from .gateway import local_server

        validate_routes(app.routes)  # as `chalice local`: fail on routes API Gateway rejects
        config_path = PROJECT_DIR / ".chalice" / "config.json"
        on_disk = json.loads(config_path.read_text()) if config_path.exists() else {}
        config = Config(chalice_stage=DEPLOYED_STAGE, config_from_disk=on_disk,
                        user_provided_params={"chalice_app": app,
                                              "project_dir": str(PROJECT_DIR)})
        self._chalice_config = config
        try:
            self._api = local_server(app, config, LOOPBACK, self.port)
        except OSError as exc:
            raise PortInUse(self.port, "RUNS_PORT") from exc

    def _create_resources(self) -> dict[str, Any] | None:
        """The template's queues (and, on moto, tables and bucket); the SQLite queues by name."""
        from ..settings import get_settings

        if self.backend == "sqlite":
            self._queues = create_queues(get_settings())
            return self._queues
        import boto3

        from .resources import create_resources

        # The template leaves names to CloudFormation; locally they are the settings' names.
        create_resources(boto3.Session())
        return None

    def _resume(self, queues: dict[str, Any]) -> None:
        """Pick up what a previous stack on this database left (see single_machine)."""
        from ..bootstrap import container

        self.resumed = describe_resume(resume(container(), queues))
        if self.resumed:
            log.info(self.resumed)

    def _register_token(self) -> str:
        from ..bootstrap import container
        from ..domain.errors import ValidationFailed
        from ..services.tokens import create_token

        built = container()
        # Load the automations now: an invalid definition stops start-up, not the first request.
        built.catalog  # noqa: B018 - evaluated for its validation
        try:
            _, secret = create_token(built.tokens, "admin", built.clock(),
                                     secret=self.options.dev_token,
                                     description="local stack admin token")
        except ValidationFailed as exc:
            reasons = "; ".join(detail["message"] for detail in exc.details)
            raise StackError(f"RUNS_DEV_TOKEN is not a usable token: {reasons}") from exc
        return secret

    def _timeout(self, function_name: str) -> int:
        scoped = self._chalice_config.scope(DEPLOYED_STAGE, function_name)
        return scoped.lambda_timeout or 900

    def _start_threads(self, app: Any) -> None:
        from ..adapters.counters.poller import StreamPoller
        from ..handlers.entrypoints import consume_step_dlq, execute_steps, tick
        from ..settings import get_settings
        from .pollers import QueuePoller, Scheduler, StreamThread, lambda_context

        settings = get_settings()
        batch_sizes = {source.name: source.batch_size for source in app.event_sources
                       if hasattr(source, "batch_size")}
        prefix = f"{app.app_name}-{DEPLOYED_STAGE}"
        step_context = lambda_context(f"{prefix}-execute_steps", settings.executor_timeout_s)
        dlq_context = lambda_context(f"{prefix}-consume_step_dlq",
                                     self._timeout("consume_step_dlq"))
        sources = [(f"step-worker-{index + 1}", settings.step_queue, "execute_steps",
                    execute_steps, step_context) for index in range(self.options.workers)]
        sources.append(("step-dlq", settings.step_dlq, "consume_step_dlq", consume_step_dlq,
                        dlq_context))
        for thread_name, queue_name, function_name, handler, context in sources:
            queue = self._poll_queue(queue_name, settings)  # one client per thread
            self.threads.append(QueuePoller(
                thread_name, queue, handler, queue_arn=queue.arn, region=settings.region,
                batch_size=batch_sizes.get(function_name, 1),
                wait_seconds=self.options.wait_seconds, context=context,
                stop_event=self.stop_event))
        if self.options.tick_seconds:
            self.threads.append(Scheduler(
                tick, period_s=self.options.tick_seconds, region=settings.region,
                rule_name=f"{prefix}-tick", stop_event=self.stop_event,
                context=lambda_context(f"{prefix}-tick", self._timeout("tick"))))
        if self.backend == "moto":  # SQLite keeps its totals in the writes themselves
            self.threads.append(StreamThread(StreamPoller(settings),
                                             interval_s=self.options.stream_interval_s,
                                             stop_event=self.stop_event))
        for thread in self.threads:
            thread.start()


    def _poll_queue(self, name: str, settings: Any) -> Any:
        if self.backend == "sqlite":
            from ..adapters.sqlite_db import open_database
            from ..adapters.sqlite_queue import SqliteQueue

            return SqliteQueue(name, open_database(settings.runs_db), region=settings.region)
        from ..adapters.sqs_queue import SqsQueue

        return SqsQueue(name, settings)


def _import_app():
    """Import app.py only now: its decorators and models read the environment just set."""
    import app as app_module

    return app_module.app
