"""The single-machine side of the local stack (RUNS_BACKEND=sqlite): one SQLite database
file for the runs and the queues, and what a restart resumes.

A stack owns its database file exclusively (a lock file beside it), so at start-up it knows
that no executor of an earlier process is still at work: messages that process had received
are made visible again, and a step it was executing is released to be claimed again at once
(the interrupted attempt is recorded), as AWS redelivers after a crashed Lambda's lease.
"""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..settings import DEFAULT_RUNS_DB
from .emulator import StackError, local_automations

log = logging.getLogger("runs.local")

BACKENDS = ("sqlite", "moto")


def backend_of(env: Mapping[str, str]) -> str:
    """RUNS_BACKEND for the local stack: sqlite (default) or moto."""
    value = (env.get("RUNS_BACKEND") or "sqlite").strip().lower()
    if value not in BACKENDS:
        raise StackError(f"RUNS_BACKEND must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def database_path(env: Mapping[str, str]) -> str:
    """RUNS_DB (default .runs/runs.db in the project), absolute: one file for every part."""
    return os.path.abspath(env.get("RUNS_DB") or DEFAULT_RUNS_DB)


def sqlite_environment(db_path: str, api_url: str, current: Mapping[str, str]) -> dict[str, str]:
    """The variables that point the application at the database file and the local API."""
    return {
        "RUNS_BACKEND": "sqlite",
        "RUNS_DB": db_path,
        "AUTOMATIONS_DIR": local_automations(current),
        # Example automations call services on loopback (including this stack's own API),
        # unless the user said ALLOW_PRIVATE_HTTP=false.
        "ALLOW_PRIVATE_HTTP": current.get("ALLOW_PRIVATE_HTTP") or "true",
        "RUNS_SECRET_RUNS_BASE_URL": api_url,
        # Quiet terminal, as on moto: Powertools' dev switch stops metric blobs and the
        # service's logger prints one line per record; no X-Ray daemon here either.
        "POWERTOOLS_DEV": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


class DatabaseLock:
    """An exclusive lock on `<db>.lock`: one stack per database file."""

    def __init__(self, db_path: str) -> None:
        self.path = f"{db_path}.lock"
        self._handle: Any = None

    def acquire(self) -> None:
        """Take the lock; StackError when another stack holds it."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StackError(f"another local stack is using {self.path[:-5]}; stop it or set "
                             "RUNS_DB to another file") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def queue_attributes(settings: Any) -> dict[str, Any]:
    """Queue name → QueueAttributes, from the SQS queues of infra/resources.yaml."""
    from ..adapters.sqlite_queue import DEFAULT_RETENTION_S, DEFAULT_VISIBILITY_S, QueueAttributes
    from .resources import load_template, resources_of_type, settings_names

    names = settings_names(settings)
    queues = resources_of_type(load_template(), "AWS::SQS::Queue")
    attributes = {}
    for logical_id, props in queues.items():
        redrive = props.get("RedrivePolicy") or {}
        target = redrive.get("deadLetterTargetArn", {}).get("Fn::GetAtt", [None])[0]
        attributes[names[logical_id]] = QueueAttributes(
            visibility_timeout=int(props.get("VisibilityTimeout", DEFAULT_VISIBILITY_S)),
            retention_seconds=int(props.get("MessageRetentionPeriod", DEFAULT_RETENTION_S)),
            dead_letter=names[target] if target else None,
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        )
    return attributes


def create_queues(settings: Any) -> dict[str, Any]:
    """Create (or update) the template's queues in the database; name → SqliteQueue."""
    from ..adapters.sqlite_db import open_database
    from ..adapters.sqlite_queue import SqliteQueue, create_queue

    db = open_database(settings.runs_db)
    queues = {}
    for name, attributes in queue_attributes(settings).items():
        create_queue(db, name, attributes)
        queues[name] = SqliteQueue(name, db, region=settings.region)
    return queues


def resume(deps: Any, queues: Mapping[str, Any]) -> dict[str, Any]:
    """After a stop: make messages of the stopped process visible again, release the steps it
    was executing; returns what was found (for the log)."""
    from ..services.recovery import release_interrupted_steps

    released = sum(queue.release_in_flight() for queue in queues.values())
    steps = release_interrupted_steps(deps)
    counts = queues[deps.settings.step_queue].counts()
    return {"messages": released, "steps": steps,
            "waiting": counts["delayed"] + counts["visible"]}


def describe_resume(found: Mapping[str, Any]) -> str | None:
    """One line about what the start-up resumed, or None when there was nothing."""
    parts = []
    if found["steps"]:
        named = ", ".join(f"{run_id} step {step}" for run_id, step in found["steps"][:5])
        more = f" and {len(found['steps']) - 5} more" if len(found["steps"]) > 5 else ""
        parts.append(f"{len(found['steps'])} interrupted step(s) run again ({named}{more})")
    if found["messages"]:
        parts.append(f"{found['messages']} unfinished message(s) redelivered")
    if found["waiting"]:
        parts.append(f"{found['waiting']} step message(s) (delays, retries, queued steps) "
                     "delivered when due")
    return "resumed: " + "; ".join(parts) if parts else None
