"""Runs routes: list, detail, cancel, retry now. Each parses, calls one service and shapes the JSON."""
from __future__ import annotations

from ..bootstrap import container
from ..domain.clock import iso
from ..services import lifecycle
from ..services import runs as service
from ..services.retry_now import retry_now as wake_step
from ..services.tokens import Role
from .common import Identity, endpoint
from .models import CancelOut, ListRunsQuery, RetryNowOut, RunDetailOut, RunListOut

RUN_ID = {"id": "run id (uuid)"}


@endpoint("/api/automations/runs", summary="List runs, newest first", role=Role.VIEWER,
          query=ListRunsQuery, response=RunListOut)
def list_runs(query: ListRunsQuery, identity: Identity) -> dict:
    """GET /api/automations/runs."""
    box = container()
    page = service.list_runs(box.repo, query.to_query(), box.settings.cursor_key)
    return {
        "runs": [run.to_json() for run in page.runs],
        "pagination": {
            "page": page.page,
            "pageSize": page.page_size,
            "total": page.total,
            "totalPages": page.total_pages,
            "nextCursor": page.next_cursor,
        },
    }


@endpoint("/api/automations/runs/{id}", summary="Run detail with steps and events",
          role=Role.VIEWER, response=RunDetailOut, path_params=RUN_ID)
def get_run(id: str, identity: Identity) -> dict:  # noqa: A002 - Chalice passes the URL name
    """GET /api/automations/runs/{id}."""
    return service.get_run_detail(container().repo, id).to_json()


@endpoint("/api/automations/runs/{id}/cancel", methods=["POST"], summary="Cancel a run",
          role=Role.OPERATOR, response=CancelOut, errors=(409,), path_params=RUN_ID)
def cancel_run(id: str, identity: Identity) -> dict:  # noqa: A002
    """POST /api/automations/runs/{id}/cancel."""
    box = container()
    run = lifecycle.cancel(box, id, actor=identity.actor)
    return {"id": run.id, "status": run.status.value, "cancelledAt": iso(run.cancelled_at)}


@endpoint("/api/automations/runs/{id}/steps/{name}/retry-now", methods=["POST"],
          summary="Wake a step waiting for its retry backoff (a delay/wait: admin) at once",
          role=Role.OPERATOR, response=RetryNowOut, status=202, errors=(409,),
          path_params={**RUN_ID, "name": "step name"})
def retry_now(id: str, name: str, identity: Identity) -> dict:  # noqa: A002
    """POST /api/automations/runs/{id}/steps/{name}/retry-now."""
    box = container()
    return wake_step(box, id, name, actor=identity.actor, role=identity.role).to_json()
