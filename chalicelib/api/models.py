"""Pydantic models of the runs API: they validate requests and generate the OpenAPI document."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ..domain.clock import parse_iso
from ..domain.model import RunFilter
from ..domain.statuses import RunStatus, StepStatus
from ..services.runs import RunQuery

MIN_YEAR, MAX_YEAR = 1970, 9999
# Page paging skips `(page - 1) × pageSize` index entries on every request; cursors do not.
MAX_PAGED_RUNS = 10_000


class TriggerType(str, Enum):
    MANUAL = "manual"
    WEBHOOK = "webhook"
    CRON = "cron"
    AUTOMATION_FAILURE = "automation-failure"


class ApiModel(BaseModel):
    """Base of request models: camelCase names on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ListRunsQuery(ApiModel):
    """Query string of GET /api/automations/runs."""

    automation_name: str | None = Field(None, min_length=1, max_length=100)
    status: list[RunStatus] = Field(default_factory=list, description="repeatable")
    trigger_type: TriggerType | None = None
    replay_of: str | None = Field(None, min_length=1)
    since: datetime | None = Field(None, description="ISO 8601, on createdAt (inclusive), "
                                   "years 1970..9999")
    until: datetime | None = Field(None, description="ISO 8601, on createdAt (inclusive), "
                                   "years 1970..9999")
    page_size: int = Field(20, ge=1, le=100)
    page: int | None = Field(None, ge=1, description="default 1; not with cursor; "
                             "page × pageSize ≤ 10000 (cursors go further)")
    cursor: str | None = Field(None, min_length=1, description="nextCursor of the previous page")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_8601(cls, value: Any) -> Any:
        """Accept ISO 8601 text only (pydantic alone would also take epoch numbers)."""
        if not isinstance(value, str):
            return value
        try:
            parsed = parse_iso(value)
        except (ValueError, OverflowError):  # e.g. year 9999 at -01:00 is past datetime.max
            raise ValueError("must be an ISO 8601 timestamp") from None
        # The indexes compare createdAt as text, which is time order for 4-digit years only.
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValueError(f"must be in the years {MIN_YEAR}..{MAX_YEAR} (UTC)")
        return parsed

    @field_validator("until")
    @classmethod
    def _until_after_since(cls, value: datetime | None, info) -> datetime | None:
        since = info.data.get("since")
        if value is not None and since is not None and value < since:
            raise ValueError("must not be before since")
        return value

    @field_validator("page")
    @classmethod
    def _within_page_reach(cls, value: int | None, info) -> int | None:
        page_size = info.data.get("page_size") or 1
        if value is not None and value * page_size > MAX_PAGED_RUNS:
            raise ValueError(f"page × pageSize must be at most {MAX_PAGED_RUNS}; "
                             "follow nextCursor to go further")
        return value

    @field_validator("cursor")
    @classmethod
    def _not_with_page(cls, value: str | None, info) -> str | None:
        if value is not None and info.data.get("page") is not None:
            raise ValueError("cannot be combined with page; use one or the other")
        return value

    def to_query(self) -> RunQuery:
        """The service-level query."""
        return RunQuery(
            filter=RunFilter(
                automation_name=self.automation_name,
                statuses=tuple(dict.fromkeys(self.status)),
                trigger_type=self.trigger_type.value if self.trigger_type else None,
                replay_of=self.replay_of,
                since=self.since,
                until=self.until,
            ),
            page_size=self.page_size,
            page=self.page,
            cursor=self.cursor,
        )


class Out(BaseModel):
    """Base of response models (documentation; tests validate answers against them)."""

    model_config = ConfigDict(extra="forbid")


class RunOut(Out):
    id: str
    automationName: str
    status: RunStatus
    triggerType: str
    triggerData: Any = None
    createdAt: datetime
    startedAt: datetime | None
    completedAt: datetime | None
    durationMs: int | None = Field(description="execution time only")
    queuedMs: int | None
    attempt: int = Field(description="highest attempt of any step, 1 = first")
    error: dict[str, Any] | None
    replayOf: str | None
    cancelledAt: datetime | None


class StepOut(Out):
    index: int
    name: str
    type: str
    operator: str
    status: StepStatus
    startedAt: datetime | None
    completedAt: datetime | None
    durationMs: int | None
    attempt: int
    attempts: list[dict[str, Any]]
    output: Any = None
    error: dict[str, Any] | None
    reusedFrom: str | None


class EventOut(Out):
    at: datetime
    type: str
    from_: str | None = Field(alias="from")
    to: str | None
    actor: str | None
    detail: dict[str, Any]


class RunDetailOut(RunOut):
    steps: list[StepOut]
    events: list[EventOut]


class Pagination(Out):
    page: int
    pageSize: int
    total: int
    totalPages: int
    nextCursor: str | None


class RunListOut(Out):
    runs: list[RunOut]
    pagination: Pagination


class CancelOut(Out):
    id: str
    status: Literal["cancelled"]
    cancelledAt: datetime


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = None
    message: str
    allowed: list[Any] | None = None


class ErrorOut(Out):
    success: Literal[False]
    code: str = Field(description="UPPER_SNAKE error code")
    message: str
    details: list[ErrorDetail]
    status: str | None = Field(None, description="current run status (409 only)")
