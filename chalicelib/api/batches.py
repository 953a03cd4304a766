"""Bulk routes: replay or cancel the runs a filter matches, and the batch's progress."""
from __future__ import annotations

from chalice import Response

from ..bootstrap import container
from ..services import bulk
from ..services.tokens import Role
from .batch_models import BatchOut, BatchStartedOut, BulkCancelIn, BulkReplayIn, DryRunOut
from .common import Identity, api, check_key_length, endpoint

IDEMPOTENCY = {"Idempotency-Key": "repeats with the same key answer the same batch (24 h)"}
DRY_RUN = {200: ("dryRun: the count and the first ids; nothing changed", DryRunOut)}


def _start(body: BulkCancelIn, identity: Identity) -> Response:
    box = container()
    request = body.to_request(box.settings.bulk_max_runs)
    is_admin = identity.role == Role.ADMIN
    if body.dry_run:
        return Response(bulk.preview(box, request, is_admin=is_admin), status_code=200)
    key = check_key_length(api.current_request.headers.get("idempotency-key"),
                           "Idempotency-Key")
    batch, created = bulk.start(box, request, actor=identity.actor, is_admin=is_admin,
                                idempotency_key=key)
    return Response({"id": batch.id, "batchId": batch.id, "action": batch.action,
                     "matched": batch.matched, "done": batch.done, "deduplicated": not created},
                    status_code=202,
                    headers={"Location": f"/api/automations/batches/{batch.id}"})


@endpoint("/api/automations/runs/replay", methods=["POST"], status=202,
          summary="Replay every terminal run a filter matches, in the background",
          role=Role.OPERATOR, body=BulkReplayIn, response=BatchStartedOut, also=DRY_RUN,
          errors=(400, 403), headers=IDEMPOTENCY)
def bulk_replay(identity: Identity, body: BulkReplayIn) -> Response:
    """POST /api/automations/runs/replay."""
    return _start(body, identity)


@endpoint("/api/automations/runs/cancel", methods=["POST"], status=202,
          summary="Cancel every pending or running run a filter matches, in the background",
          role=Role.OPERATOR, body=BulkCancelIn, response=BatchStartedOut, also=DRY_RUN,
          errors=(400,), headers=IDEMPOTENCY)
def bulk_cancel(identity: Identity, body: BulkCancelIn) -> Response:
    """POST /api/automations/runs/cancel."""
    return _start(body, identity)


@endpoint("/api/automations/batches/{id}", summary="A bulk replay or cancel: its progress",
          role=Role.VIEWER, response=BatchOut, errors=(404,),
          path_params={"id": "batch id (uuid)"})
def get_batch(id: str, identity: Identity) -> dict:  # noqa: A002 - Chalice passes the URL name
    """GET /api/automations/batches/{id}."""
    return bulk.get(container(), id).to_json()
