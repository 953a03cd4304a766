"""What `trigger.data` holds for each trigger type; the services build it with these models."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from .statuses import RunStatus


class TriggerData(BaseModel):
    """Base: wire names as written, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The JSON stored as the run's trigger data."""
        return self.model_dump(mode="json", by_alias=True)


class ManualData(RootModel[Any]):
    """The request's `triggerData` as sent (any JSON value; `{}` when omitted)."""


class WebhookData(TriggerData):
    """The delivery as received."""

    method: str = Field(description="HTTP method, e.g. POST")
    path: str = Field(description="the route path")
    query: dict[str, Any] = Field(description="query string parameters")
    headers: dict[str, str] = Field(description="request headers, lower-cased; signature "
                                    "headers removed, sensitive ones `[redacted]`")
    body: Any = Field(description="the body parsed as JSON when it is JSON, else its text; "
                      "null when empty")


class CronData(TriggerData):
    """The scheduled minute the run is for."""

    scheduledAt: str = Field(description="ISO 8601 UTC time of the scheduled minute")


class FailedRun(TriggerData):
    """The run that ended in a watched status."""

    id: str
    automationName: str
    status: RunStatus
    error: dict[str, Any] | None = Field(description="the run's error (`message`, `type`, "
                                         "`step`, ...)")
    attempt: int = Field(description="highest attempt of any step")
    maxAttempts: int = Field(description="attempts the failed step's retry policy allowed")
    triggerType: str
    startedAt: str | None
    completedAt: str | None
    failedStep: str | None = Field(description="the step that ended the run")


class FailureData(TriggerData):
    """The run whose ending started this handler."""

    run: FailedRun
