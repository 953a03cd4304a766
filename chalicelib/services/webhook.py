"""Webhook deliveries: HMAC signature check, deduplication window, then a run."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from typing import Any

from ..domain.errors import (
    AutomationNotFound, Conflict, RunNotFound, Unauthorized, ValidationFailed,
)
from ..domain.model import Run
from ..domain.statuses import RunStatus
from ..domain.templates import build_context, mask_headers, render
from ..domain.trigger_data import WebhookData
from .trigger import start_run

MAX_DEDUP_KEY_LENGTH = 256
SIGNATURE_HEADERS = ("x-signature-256", "x-hub-signature-256")
_SECRET_REF = re.compile(r"^\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}$")
# A failed original must not block a retried delivery (SPEC 6).
UNSUCCESSFUL = frozenset({RunStatus.FAILED, RunStatus.EXHAUSTED, RunStatus.TIMED_OUT,
                          RunStatus.CANCELLED})


def signature_of(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, the value callers send."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(deps, trigger, headers: dict[str, str], body: bytes) -> None:
    """Unauthorized unless a configured secret signed this body."""
    if not trigger.secret:
        return
    match = _SECRET_REF.match(trigger.secret)
    secret = deps.secrets.get(match.group(1)) if match else None
    if not secret:
        raise Unauthorized("webhook secret is not configured on this deployment")
    given = next((headers[name] for name in SIGNATURE_HEADERS if headers.get(name)), "")
    if not hmac.compare_digest(given.encode(), signature_of(secret, body).encode()):
        raise Unauthorized("bad or missing webhook signature")


def receive(deps, name: str, *, method: str, path: str, query: dict[str, Any],
            headers: dict[str, str], body: Any, raw_body: bytes) -> tuple[Run, bool]:
    """Start a run for a delivery; returns (run, deduplicated?)."""
    automation = deps.catalog.get(name)
    if automation.trigger_type != "webhook":
        raise AutomationNotFound(name)  # no webhook route for other trigger types
    headers = {key.lower(): value for key, value in headers.items()}
    verify_signature(deps, automation.trigger, headers, raw_body)
    data = WebhookData(method=method, path=path, query=query,
                       headers=mask_headers(_without_signatures(headers)), body=body).to_json()
    key_template = automation.trigger.deduplication_key
    if not key_template:
        return start_run(deps, automation, "webhook", data, actor="webhook"), False
    context = build_context(trigger_data=data, steps={}, run_id="", attempt=1,
                            automation_name=name)
    rendered = render(key_template, context)
    if not isinstance(rendered, str):
        rendered = json.dumps(rendered, separators=(",", ":"), sort_keys=True, default=str)
    if len(rendered) > MAX_DEDUP_KEY_LENGTH:
        raise ValidationFailed(
            f"deduplication key is longer than {MAX_DEDUP_KEY_LENGTH} characters",
            [{"field": "deduplicationKey",
              "message": f"at most {MAX_DEDUP_KEY_LENGTH} characters"}])
    key = f"webhook:{name}:{rendered}"
    window = int(automation.trigger.deduplication_window)
    for _ in range(3):
        new_id = str(uuid.uuid4())
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
