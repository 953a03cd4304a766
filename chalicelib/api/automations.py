"""Automations routes: list, manual trigger, webhook, replay. Parse → one service → JSON."""
from __future__ import annotations

from typing import Any

from chalice import Response

from ..bootstrap import container
from ..domain.clock import iso
from ..domain.errors import PayloadTooLarge
from ..services import replay as replay_service
from ..services import webhook
from ..services.tokens import Role
from ..services.trigger import trigger_manual
from .common import Identity, api, check_key_length, endpoint, loads_json
from .trigger_models import (
    AutomationListOut, ReplayIn, ReplayOut, TriggerIn, TriggerOut, WebhookOut,
)

NAME = {"name": "automation name"}
IDEMPOTENCY = {"Idempotency-Key": "repeats with the same key return the same run (24 h)"}
WEBHOOK_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _location(run_id: str) -> dict[str, str]:
    return {"Location": f"/api/automations/runs/{run_id}"}


@endpoint("/api/automations", summary="List automation definitions", role=Role.VIEWER,
          response=AutomationListOut)
def list_automations(identity: Identity) -> dict:
    """GET /api/automations."""
    deps = container()
    now = deps.clock()
    return {"automations": [
        {
            "name": a.name, "description": a.description, "enabled": a.enabled,
            "triggerType": a.trigger_type,
            "concurrency": {"limit": a.concurrency.limit} if a.concurrency else None,
            "nextRunAt": iso(a.trigger.next_after(now))
            if a.trigger_type == "cron" and a.enabled else None,
        }
        for a in deps.catalog.all()
    ]}


@endpoint("/api/automations/{name}/trigger", methods=["POST"], status=202,
          summary="Start a run of a manual automation (admins: of any automation, recorded "
                  "as such)", role=Role.OPERATOR,
          body=TriggerIn, response=TriggerOut, errors=(403, 404, 409, 413), path_params=NAME,
          headers=IDEMPOTENCY)
def trigger(name: str, identity: Identity, body: TriggerIn) -> Response:
    """POST /api/automations/{name}/trigger."""
    key = check_key_length(api.current_request.headers.get("idempotency-key"),
                           "Idempotency-Key")
    run = trigger_manual(container(), name, body.trigger_data, actor=identity.actor,
                         role=identity.role, idempotency_key=key)
    return Response({"id": run.id, "status": run.status.value}, status_code=202,
                    headers=_location(run.id))


@endpoint("/api/automations/{name}/webhook", methods=WEBHOOK_METHODS, status=202, role=None,
          summary="Webhook delivery (HMAC-SHA256 `X-Signature-256: sha256=<hex>` when the "
                  "automation has a secret; a duplicate, or the same signed body within 24 h, "
                  "answers 200 with deduplicated: true; an unknown name answers as a bad "
                  "signature does, 401; over the automation's `rateLimit`, 429 with "
                  "`Retry-After`)",
          response=WebhookOut,
          also={200: ("a duplicate: the original run, deduplicated: true", WebhookOut)},
          errors=(400, 401, 409, 413, 429), path_params=NAME,
          headers={"X-Signature-256": "sha256=<hex HMAC-SHA256 of the raw body>, when the "
                                      "automation has a secret",
                   "X-Signature-Timestamp": "unix seconds, with `signature: timestamped` "
                                            "(signed: `<timestamp>.<body>`, 5 minutes)"})
def receive_webhook(name: str) -> Response:
    """ANY /api/automations/{name}/webhook: public, authenticated by its HMAC signature."""
    request = api.current_request
    raw = request.raw_body or b""
    limit = container().settings.max_trigger_bytes
    if len(raw) > limit:
        raise PayloadTooLarge(f"body is {len(raw)} bytes; the limit is {limit}")
    run, duplicate = webhook.receive(
        container(), name, method=request.method, path=request.path,
        query=dict(request.query_params or {}), headers=dict(request.headers),
        body=_body_of(raw), raw_body=raw,
    )
    if duplicate:
        return Response({"id": run.id, "deduplicated": True}, status_code=200)
    return Response({"id": run.id}, status_code=202, headers=_location(run.id))


def _body_of(raw: bytes) -> Any:
    """JSON when it parses, else the text (never evaluated as a template)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return loads_json(text) if text.strip() else None
    except ValueError:
        return text


@endpoint("/api/automations/runs/{id}/replay", methods=["POST"], status=202,
          summary="Replay a terminal run, resuming at its first step that did not complete",
          role=Role.OPERATOR, body=ReplayIn, response=ReplayOut,
          errors=(400, 403, 404, 409, 413),
          path_params={"id": "run id"}, headers=IDEMPOTENCY)
def replay(id: str, identity: Identity, body: ReplayIn) -> Response:  # noqa: A002
    """POST /api/automations/runs/{id}/replay."""
    fields: dict[str, Any] = {}
    if "trigger_data" in body.model_fields_set:
        fields["trigger_data"] = body.trigger_data
    run, reused = replay_service.replay(
        container(), id, actor=identity.actor, is_admin=identity.role == Role.ADMIN,
        from_step=body.from_step, definition=body.definition,
        idempotency_key=check_key_length(api.current_request.headers.get("idempotency-key"),
                                         "Idempotency-Key"), **fields,
    )
    return Response({
        "id": run.id, "runId": run.id, "replayOf": run.replay_of, "status": "pending",
        "resumeFrom": run.automation.actions[run.resume_from].name,
        "reusedSteps": list(run.reused_steps),
    }, status_code=202, headers=_location(run.id))
