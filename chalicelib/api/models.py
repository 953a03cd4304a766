"""Pydantic models of the runs API: they validate requests and generate the OpenAPI document."""
from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..domain.clock import parse_iso
from ..domain.model import RunFilter
from ..domain.search import KEY_PATTERN, MAX_VALUE_LENGTH
from ..domain.statuses import RunStatus, StepStatus
from ..services.runs import RunQuery

MIN_YEAR, MAX_YEAR = 1970, 9999
# `triggerData.<key>` (the documented form) or `triggerData[<key>]` (OpenAPI's deepObject).
_TRIGGER_DATA_PARAM = re.compile(r"^triggerData(?:\.(.*)|\[(.*)\])$", re.S)
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
    waiting: Literal["retry", "delay"] | None = Field(
        None, description="running runs parked on a retry backoff or a delay/wait")
    trigger_data: dict[str, str] | None = Field(
        None, alias="triggerData", description="`triggerData.<key>=<value>` (or "
        "`triggerData[<key>]=<value>`): exact match on a "
        "trigger-data key the automation declares in `index` (one key per request; numbers "
        "and booleans as JSON text)")

    @model_validator(mode="before")
    @classmethod
    def _trigger_data_keys(cls, data: Any) -> Any:
        """Gather `triggerData.<key>` parameters into `triggerData` (one at most)."""
        if not isinstance(data, dict):
            return data
        found = {}
        for key, value in data.items():
            match = _TRIGGER_DATA_PARAM.match(key) if isinstance(key, str) else None
            if match:
                found[match.group(1) or match.group(2)] = value
        if not found:
            return data
        rest = {key: value for key, value in data.items()
                if not (isinstance(key, str) and _TRIGGER_DATA_PARAM.match(key))}
        if "triggerData" in rest:
            raise ValueError("use triggerData.<key>=<value>")
        return {**rest, "triggerData": found}

    @field_validator("trigger_data")
    @classmethod
    def _one_top_level_key(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) != 1:
            raise ValueError("search by one triggerData.<key> at a time")
        ((key, text),) = value.items()
        if not KEY_PATTERN.match(key):
            raise ValueError(f"'{key}' is not a top-level trigger-data key")
        if len(text) > MAX_VALUE_LENGTH:
            raise ValueError(f"values are at most {MAX_VALUE_LENGTH} characters")
        return value

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
                waiting=self.waiting,
                data=next(iter(self.trigger_data.items())) if self.trigger_data else None,
            ),
            page_size=self.page_size,
            page=self.page,
            cursor=self.cursor,
        )


class Out(BaseModel):
    """Base of response models (documentation; tests validate answers against them)."""

    model_config = ConfigDict(extra="forbid")


class WaitingOut(Out):
    kind: Literal["retry", "delay"]
    step: str
    stepIndex: int
    attempt: int = Field(description="the attempt that runs when the wait ends")
    waitingUntil: datetime


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
    waiting: WaitingOut | None = Field(None, description="set while the run waits for a "
                                       "retry's backoff or a delay/wait")
    waitingUntil: datetime | None = Field(None, description="when the wait ends")


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


class RetryNowOut(Out):
    runId: str
    step: str
    kind: Literal["retry", "delay"]
    attempt: int = Field(description="the attempt that runs now")
    wokenAt: datetime
    repeated: bool = Field(description="true when an earlier request had woken it already")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = None
    message: str
    allowed: list[Any] | None = None


class RateLimitOut(Out):
    perMinute: int
    burst: int


class ErrorOut(Out):
    success: Literal[False]
    code: str = Field(description="UPPER_SNAKE error code")
    message: str
    details: list[ErrorDetail]
    status: str | None = Field(None, description="current run status (409 only)")
    limit: RateLimitOut | None = Field(None, description="the limit exceeded (429 only)")
    retryAfter: int | None = Field(None, description="seconds to wait, as the Retry-After "
                                   "header (429 only)")
