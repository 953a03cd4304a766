"""Pydantic models of the automations, trigger, webhook and replay routes."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from ..domain.statuses import RunStatus
from .models import ApiModel, Out


class TriggerIn(ApiModel):
    """Body of POST /api/automations/{name}/trigger (optional)."""

    trigger_data: Any = Field(default_factory=dict, description="recorded as the run's triggerData")


class ReplayIn(ApiModel):
    """Body of POST /api/automations/runs/{id}/replay (optional)."""

    from_step: str | None = Field(None, min_length=1, description=(
        "a step at or before the resume point: it and every later step run again"))
    trigger_data: Any = Field(None, description="replaces the trigger data (admin role)")
    definition: Literal["latest", "original"] = "latest"


class AutomationOut(Out):
    name: str
    description: str | None
    enabled: bool
    triggerType: Literal["manual", "webhook", "cron", "automation-failure"]
    concurrency: dict[str, int] | None
    nextRunAt: datetime | None = None


class AutomationListOut(Out):
    automations: list[AutomationOut]


class TriggerOut(Out):
    id: str
    status: RunStatus


class WebhookOut(Out):
    id: str
    deduplicated: bool = False


class ReplayOut(Out):
    id: str
    runId: str = Field(description="same as id")
    replayOf: str
    status: Literal["pending"]
    resumeFrom: str = Field(description="the first step the replay executes")
    reusedSteps: list[str] = Field(description="steps recorded skipped with their original output")
