"""Webhook deliveries: HMAC signature check, replay memory, deduplication window, then a run."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from ..domain.errors import (
    AutomationNotFound, Conflict, RateLimited, RunNotFound, Unauthorized, ValidationFailed,
)
from ..domain.model import Run
from ..domain.rate_limit import micros
from ..domain.statuses import RunStatus
from ..domain.templates import build_context, mask_headers, render
from ..domain.trigger_data import WebhookData
from .trigger import start_once, start_run

MAX_DEDUP_KEY_LENGTH = 256
SIGNATURE_HEADERS = ("x-signature-256", "x-hub-signature-256")
TIMESTAMP_HEADER = "x-signature-timestamp"
TIMESTAMP_TOLERANCE_S = 300
REPLAY_MEMORY_S = 24 * 3600  # a verified signed body seen this recently is a duplicate
# One answer for an unknown webhook and a bad signature: callers cannot probe for names.
REFUSED = "unknown webhook or bad signature"
_SECRET_REF = re.compile(r"^\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}$")
# A failed original must not block a retried delivery (SPEC 6).
UNSUCCESSFUL = frozenset({RunStatus.FAILED, RunStatus.EXHAUSTED, RunStatus.TIMED_OUT,
                          RunStatus.CANCELLED})


def signature_of(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """`sha256=<hex HMAC-SHA256>` of the raw body (or of `<timestamp>.<body>`)."""
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(deps, trigger, headers: dict[str, str], body: bytes,
                     now: datetime | None = None) -> str | None:
    """The verified signature (None for an unsigned automation); Unauthorized otherwise."""
    if not trigger.secret:
        return None
    match = _SECRET_REF.match(trigger.secret)
    secret = deps.secrets.get(match.group(1)) if match else None
    if not secret:
        raise Unauthorized(REFUSED)  # not configured on this deployment: nobody can sign
    given = next((headers[name] for name in SIGNATURE_HEADERS if headers.get(name)), "")
    timestamp = None
    if trigger.signature == "timestamped":
        timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
        if not _fresh(timestamp, now or datetime.now(timezone.utc)):
            raise Unauthorized(REFUSED)
    if not hmac.compare_digest(given.encode(), signature_of(secret, body, timestamp).encode()):
        raise Unauthorized(REFUSED)
    return given


def _fresh(timestamp: str, now: datetime) -> bool:
    """True for unix seconds within TIMESTAMP_TOLERANCE_S of now."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now.timestamp() - int(timestamp)) <= TIMESTAMP_TOLERANCE_S


def receive(deps, name: str, *, method: str, path: str, query: dict[str, Any],
            headers: dict[str, str], body: Any, raw_body: bytes) -> tuple[Run, bool]:
    """Start a run for a delivery; returns (run, deduplicated?)."""
    try:
        automation = deps.catalog.get(name)
    except AutomationNotFound:
        raise Unauthorized(REFUSED) from None
    if automation.trigger_type != "webhook":
        raise Unauthorized(REFUSED)  # no webhook route for other trigger types
    headers = {key.lower(): value for key, value in headers.items()}
    now = deps.clock()
    signature = verify_signature(deps, automation.trigger, headers, raw_body, now)
    # After the signature (a forged delivery must not spend a signed automation's tokens),
    # before anything is stored: every verified delivery counts, duplicates included.
    _take_token(deps, automation, now)
    data = WebhookData(method=method, path=path, query=query,
                       headers=mask_headers(_without_signatures(headers)), body=body).to_json()
    if signature is None:
        return _deliver(deps, automation, data)
    # The same signed body again (a captured request replayed) creates nothing for 24 h,
    # whatever its deduplication key says.
    outcome: dict[str, bool] = {}

    def start(run_id: str) -> Run:
        run, outcome["duplicate"] = _deliver(deps, automation, data, run_id)
        return run

    run, created = start_once(deps, "webhook-signed", f"{name}:{signature}", start,
                              ttl_s=REPLAY_MEMORY_S)
    return run, (not created) or outcome.get("duplicate", False)


def _take_token(deps, automation, now: datetime) -> None:
    """One token from the automation's bucket; RateLimited (429) when it is empty."""
    limit = automation.trigger.effective_rate_limit
    allowance = limit.allowance
    verdict = deps.rate_limiter.take(f"webhook:{automation.name}", allowance, micros(now))
    if not verdict.admitted:
        raise RateLimited(automation.name, limit.per_minute, allowance.burst,
                          verdict.retry_after_s)


def _dedup_key(automation, data: dict[str, Any]) -> str | None:
    key_template = automation.trigger.deduplication_key
    if not key_template:
        return None
    context = build_context(trigger_data=data, steps={}, run_id="", attempt=1,
                            automation_name=automation.name)
    rendered = render(key_template, context)
    if not isinstance(rendered, str):
        rendered = json.dumps(rendered, separators=(",", ":"), sort_keys=True, default=str)
    if len(rendered) > MAX_DEDUP_KEY_LENGTH:
        raise ValidationFailed(
            f"deduplication key is longer than {MAX_DEDUP_KEY_LENGTH} characters",
            [{"field": "deduplicationKey",
              "message": f"at most {MAX_DEDUP_KEY_LENGTH} characters"}])
    return f"webhook:{automation.name}:{rendered}"


def _deliver(deps, automation, data: dict[str, Any],
             run_id: str | None = None) -> tuple[Run, bool]:
    """A new run, or the live original of its deduplication key; (run, duplicate?)."""
    key = _dedup_key(automation, data)
    if key is None:
        return start_run(deps, automation, "webhook", data, actor="webhook",
                         run_id=run_id), False
    window = int(automation.trigger.deduplication_window)
    for _ in range(3):
        new_id = run_id or str(uuid.uuid4())
        existing = deps.markers.put_once(key, {"runId": new_id}, window)
        if existing is None:
            return start_run(deps, automation, "webhook", data, actor="webhook",
                             run_id=new_id), False
        try:
            original = deps.repo.get_run(existing["runId"])
        except RunNotFound:
            original = None
        if original is not None and original.status not in UNSUCCESSFUL:
            return original, True
        # A retried delivery after a failure goes through; only one of several racing
        # retries removes the failed original's marker, the others then see the winner's.
        deps.markers.delete(key, only_if=existing)
    raise Conflict("concurrent deliveries of this key keep racing; retry")


def _without_signatures(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("[redacted]" if k in SIGNATURE_HEADERS else v) for k, v in headers.items()}
