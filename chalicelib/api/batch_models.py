"""Pydantic models of the bulk routes: replay or cancel the runs a list filter matches."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from ..domain.errors import ValidationFailed
from ..domain.model import RunFilter
from ..domain.statuses import RunStatus
from ..services.bulk import BulkRequest
from .models import ApiModel, ListRunsQuery, Out, TriggerType

FILTER_FIELDS = ("automation_name", "status", "trigger_type", "replay_of", "since", "until")


class BulkCancelIn(ApiModel):
    """Body of POST /api/automations/runs/cancel: the list filters (at least one), a limit,
    and dryRun."""

    automation_name: str | None = Field(None, min_length=1, max_length=100)
    status: list[RunStatus] = Field(default_factory=list)
    trigger_type: TriggerType | None = None
    replay_of: str | None = Field(None, min_length=1)
    since: datetime | None = Field(None, description="ISO 8601, on createdAt (inclusive)")
    until: datetime | None = Field(None, description="ISO 8601, on createdAt (inclusive); "
                                   "capped at the batch's creation")
    limit: int | None = Field(None, ge=1, description="the most runs the batch takes "
                              "(default and maximum: the BULK_MAX_RUNS setting, 10000)")
    dry_run: bool = Field(False, description="answer the count and the first ids (200); "
                          "change nothing")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_8601(cls, value: Any) -> Any:
        return ListRunsQuery._iso_8601(value)

    @field_validator("until")
    @classmethod
    def _until_after_since(cls, value: datetime | None, info) -> datetime | None:
        return ListRunsQuery._until_after_since(value, info)

    def run_filter(self) -> RunFilter:
        """The list filter; an empty one would take every run, so one filter is required."""
        if not any(getattr(self, name) for name in FILTER_FIELDS):
            message = "give at least one of automationName, status, triggerType, replayOf, " \
                      "since, until"
            raise ValidationFailed(message, [{"field": "filter", "message": message}])
        return RunFilter(automation_name=self.automation_name,
                         statuses=tuple(dict.fromkeys(self.status)),
                         trigger_type=self.trigger_type.value if self.trigger_type else None,
                         replay_of=self.replay_of, since=self.since, until=self.until)

    def to_request(self, max_runs: int) -> BulkRequest:
        return BulkRequest(action="cancel", filter=self.run_filter(),
                           limit=self.limit or max_runs)


class BulkReplayIn(BulkCancelIn):
    """Body of POST /api/automations/runs/replay: the cancel body plus the replay options."""

    from_step: str | None = Field(None, min_length=1, description=(
        "a step at or before each run's resume point: it and every later step run again"))
    again: bool = Field(False, description="also replay runs an earlier replay already "
                        "covered (by a batch or by hand)")
    definition: Literal["latest", "original"] = "latest"
    trigger_data: Any = Field(None, description="replaces every replay's trigger data "
                              "(admin role)")

    def to_request(self, max_runs: int) -> BulkRequest:
        return BulkRequest(action="replay", filter=self.run_filter(),
                           limit=self.limit or max_runs, from_step=self.from_step,
                           again=self.again, definition=self.definition,
                           trigger_data=self.trigger_data,
                           replaces_trigger_data="trigger_data" in self.model_fields_set)


class BatchStartedOut(Out):
    id: str
    batchId: str
    action: Literal["replay", "cancel"]
    matched: int
    done: bool
    deduplicated: bool


class DryRunOut(Out):
    dryRun: Literal[True]
    action: Literal["replay", "cancel"]
    filter: dict[str, Any]
    matched: int = Field(description="runs the batch would take (total capped by limit)")
    total: int
    firstIds: list[str]


class BatchOut(Out):
    id: str
    action: Literal["replay", "cancel"]
    filter: dict[str, Any]
    options: dict[str, Any]
    actor: str
    createdAt: datetime
    finishedAt: datetime | None
    matched: int
    processed: int
    replayed: int
    cancelled: int
    skipped: int
    failed: int
    done: bool
    error: str | None
    createdRunIds: list[str] | None = None
    cancelledRunIds: list[str] | None = None
    failures: list[dict[str, Any]]
