"""Start runs: record a `pending` run with its trigger data and definition, then admit it."""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..domain.errors import AlreadyExists, Conflict, Forbidden, PayloadTooLarge, RunNotFound
from ..domain.model import Event, Run, Step
from ..domain.statuses import RunStatus
from ..observability import logger
from . import admission
from .tokens import Role

IDEMPOTENCY_TTL_S = 24 * 3600


class AutomationDisabled(Conflict):
    """A disabled automation never starts runs."""

    code = "AUTOMATION_DISABLED"

    def __init__(self, name: str) -> None:
        super().__init__(f"automation {name} is disabled", name=name)


def check_trigger_size(trigger_data: Any, limit: int) -> None:
    """Refuse trigger data over `limit` bytes of JSON (413)."""
    size = len(json.dumps(trigger_data, separators=(",", ":"), default=str).encode())
    if size > limit:
        raise PayloadTooLarge(
            f"trigger data is {size} bytes; the limit is {limit}", size=size, limit=limit
        )


def new_run(
    deps,
    automation,
    trigger_type: str,
    trigger_data: Any,
    *,
    actor: str,
    now: datetime,
    run_id: str | None = None,
    replay_of: str | None = None,
    depth: int = 0,
    resume_from: int | None = None,
    reused_steps: Sequence[str] = (),
    definition: dict[str, Any] | None = None,
) -> Run:
    """A `pending` run of `automation` (not stored yet)."""
    retention = timedelta(days=deps.settings.retention_days)
    return Run(
        id=run_id or str(uuid.uuid4()),
        automation_name=automation.name,
        status=RunStatus.PENDING,
        trigger_type=trigger_type,
        trigger_data=trigger_data,
        created_at=now,
        definition=definition or automation.to_dict(),
        replay_of=replay_of,
        depth=depth,
        resume_from=resume_from,
        reused_steps=tuple(reused_steps),
        expires_at=int((now + retention).timestamp()),
        events=(Event(at=now, type="created", to_status="pending", actor=actor,
                      detail={"triggerType": trigger_type,
                              **({"replayOf": replay_of} if replay_of else {})}),),
    )


def start_run(deps, automation, trigger_type: str, trigger_data: Any, *, actor: str,
              steps: Sequence[Step] = (), **fields: Any) -> Run:
    """Record a run and admit it (enqueue its first step, or leave it waiting for a slot)."""
    if not automation.enabled:
        raise AutomationDisabled(automation.name)
    check_trigger_size(trigger_data, deps.settings.max_trigger_bytes)
    run = new_run(deps, automation, trigger_type, trigger_data, actor=actor,
                  now=fields.pop("now", None) or deps.clock(), **fields)
    deps.repo.create_run(run, steps)
    logger.info("run created", extra={"run_id": run.id, "automation": run.automation_name,
                                      "trigger": trigger_type})
    deps.faults.point("admission.after_create")
    admission.admit(deps, run)
    return run


def start_once(deps, scope: str, key: str, start,
               ttl_s: int = IDEMPOTENCY_TTL_S) -> tuple[Run, bool]:
    """Run `start(run_id)` once per (scope, key) for `ttl_s` (24 h); returns (run, created?).

    The key is claimed first with the run id it will create, so a retried request finds the
    same run even when the first attempt crashed between claiming and creating.
    """
    run_id = str(uuid.uuid4())
    existing = deps.markers.put_once(f"{scope}:{key}", {"runId": run_id}, ttl_s)
    if existing is None:
        try:
            return start(run_id), True
        except AlreadyExists:  # a retry found the key first and created the run for us
            return deps.repo.get_run(run_id), False
    try:
        return deps.repo.get_run(existing["runId"]), False
    except RunNotFound:  # the first attempt died between claiming the key and creating
        try:
            return start(existing["runId"]), True
        except AlreadyExists:
            return deps.repo.get_run(existing["runId"]), False


def trigger_manual(deps, name: str, trigger_data: Any, *, actor: str, role: Role,
                   idempotency_key: str | None = None) -> Run:
    """Start a run by hand (the trigger route), once per Idempotency-Key when one is given.

    Webhook, cron and failure-handler automations have their own gate (a signature, the
    clock, a failure): starting them by hand bypasses it, so only an admin may, on the record.
    """
    automation = deps.catalog.get(name)
    override = automation.trigger_type != "manual"
    if override and role != Role.ADMIN:
        raise Forbidden(
            f"automation {name} is started by its {automation.trigger_type} trigger; only an "
            "admin may start it by hand", role=role.value, required=Role.ADMIN.value)
    if override:
        actor = f"{actor} (admin, {automation.trigger_type} automation)"

    def start(run_id: str | None) -> Run:
        return start_run(deps, automation, "manual", trigger_data, actor=actor, run_id=run_id)

    if idempotency_key:
        return start_once(deps, "trigger", f"{name}:{idempotency_key}", start)[0]
    return start(None)
