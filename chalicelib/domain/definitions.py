"""Automation definitions (SPEC 2): pydantic models and the catalog; loader.py reads the YAML."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .errors import AutomationNotFound
from .rate_limit import Allowance
from .redaction import is_sensitive_header
from .search import KEY_PATTERN, MAX_INDEX_KEYS
from .statuses import WATCHABLE, RunStatus

_SECRET_REF = re.compile(r"^\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}$")
DEFAULT_ATTEMPT_TIMEOUT_MS = 30_000  # an action without `timeout`


class Definition(BaseModel):
    """Base of every definition model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class RetryPolicy(Definition):
    max_attempts: int = Field(ge=1, le=10)
    delay_ms: int = Field(default=1000, ge=100, le=60_000)
    strategy: Literal["fixed", "exponential"] = "fixed"
    max_delay_ms: int = Field(default=900_000, ge=100)
    jitter: Literal["none", "full"] = "none"


class Concurrency(Definition):
    limit: int = Field(ge=1, le=1000)


class RateLimit(Definition):
    per_minute: int = Field(ge=1, le=60_000, description="runs a minute in steady state")
    burst: int | None = Field(None, ge=1, le=1000, description="runs accepted back to back "
                              "from a full bucket (default: a minute's worth, at most 100)")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`rateLimit: 60` (SPEC 2's runs per minute) is `{perMinute: 60}`."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"perMinute": value}
        return value

    @property
    def allowance(self) -> Allowance:
        """The bucket the store keeps for this limit."""
        return Allowance.per_minute(self.per_minute, self.burst or min(self.per_minute, 100))


# What a webhook automation without `rateLimit` accepts: 10 runs a second, 100 at once.
DEFAULT_RATE_LIMIT = RateLimit(per_minute=600, burst=100)


class ManualTrigger(Definition):
    type: Literal["manual"]


class WebhookTrigger(Definition):
    type: Literal["webhook"]
    secret: str | None = Field(None, description="`{{secrets.NAME}}`: callers sign the raw "
                               "body with it (signing keys never live in definitions)")
    deduplication_key: str | None = Field(None, description="a template over trigger.data; "
                                          "repeats within the window answer the first run")
    deduplication_window: int = Field(default=300, ge=1, le=86_400, description="seconds")
    signature: Literal["body", "timestamped"] = Field(
        "body", description="`body`: `X-Signature-256` over the raw body (GitHub's scheme); "
        "`timestamped`: over `<X-Signature-Timestamp>.<body>`, refused outside 5 minutes")
    rate_limit: RateLimit | None = Field(
        None, description="`{perMinute, burst}` (or just the runs per minute): deliveries "
        "over it answer 429 with `Retry-After` and start nothing; default 600 a minute, "
        "burst 100")

    @property
    def effective_rate_limit(self) -> RateLimit:
        """The declared limit, or DEFAULT_RATE_LIMIT."""
        return self.rate_limit or DEFAULT_RATE_LIMIT

    @field_validator("secret")
    @classmethod
    def _secret_is_a_reference(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.match(value):
            raise ValueError("must be a secret reference like '{{secrets.WEBHOOK_KEY}}'")
        return value


class CronTrigger(Definition):
    type: Literal["cron"]
    expression: str = Field(description="5 fields: minute hour day-of-month month day-of-week")
    timezone: str = Field("UTC", description="IANA time zone the expression is read in")

    @field_validator("expression")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid 5-field cron expression")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone") from None
        return value

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after `moment` (aware, in the trigger's zone)."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        return croniter(self.expression, local).get_next(datetime)

    def is_due(self, minute: datetime) -> bool:
        """True when the schedule fires in the minute starting at `minute`."""
        local = minute.astimezone(ZoneInfo(self.timezone)).replace(second=0, microsecond=0)
        return croniter.match(self.expression, local)


class FailureTrigger(Definition):
    type: Literal["automation-failure"]
    automations: list[str] | None = Field(None, description="names watched; null: every "
                                          "automation")
    statuses: list[RunStatus] = Field(default=[RunStatus.FAILED, RunStatus.EXHAUSTED], min_length=1)

    @field_validator("statuses")
    @classmethod
    def _watchable(cls, value: list[RunStatus]) -> list[RunStatus]:
        allowed = sorted(status.value for status in WATCHABLE)
        for status in value:
            if status not in WATCHABLE:
                raise ValueError(f"'{status.value}' cannot be watched (allowed: {allowed})")
        return value

    def watches(self, automation_name: str, status: RunStatus) -> bool:
        """True when a run of `automation_name` ending in `status` should start this handler."""
        named = self.automations is None or automation_name in self.automations
        return named and status in self.statuses


Trigger = Annotated[
    Union[ManualTrigger, WebhookTrigger, CronTrigger, FailureTrigger], Field(discriminator="type")
]


class Action(Definition):
    name: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_]*$", max_length=100)
    type: str
    operator: str
    props: dict[str, Any] = Field(default_factory=dict,
                                  description="the action's props (see Actions below)")
    timeout: int | None = Field(default=None, ge=1000, le=900_000,
                                description="ms per attempt (default 30 s)")
    retry: RetryPolicy | None = None
    continue_on_error: bool = Field(False, description="a failure is recorded and the run "
                                    "goes on (ending completed-with-errors)")

    @property
    def kind(self) -> str:
        """`type/operator`, the registry key."""
        return f"{self.type}/{self.operator}"

    @property
    def attempt_timeout_ms(self) -> int:
        """The time one attempt may take: `timeout`, else 30 s."""
        return self.timeout or DEFAULT_ATTEMPT_TIMEOUT_MS


class Automation(Definition):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=100)
    description: str | None = None
    enabled: bool = True
    trigger: Trigger
    timeout: int = Field(default=900_000, ge=1000, le=900_000,
                         description="ms from admission to the run's end")
    retry: RetryPolicy | None = Field(None, description="default for every action")
    concurrency: Concurrency | None = None
    index: list[str] | None = Field(
        None, description="up to 3 top-level trigger-data keys runs can be searched by "
        "(`GET /runs?triggerData.<key>=<value>`)")
    actions: list[Action] = Field(min_length=1)

    @field_validator("index")
    @classmethod
    def _searchable_keys(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if len(value) > MAX_INDEX_KEYS:
            raise ValueError(f"at most {MAX_INDEX_KEYS} keys, got {len(value)}")
        for key in value:
            if not KEY_PATTERN.match(key):
                raise ValueError(f"'{key}' is not a top-level trigger-data key (letters, digits, "
                                 "'_' and '-', no '.' or '[')")
            if is_sensitive_header(key):
                raise ValueError(f"'{key}' is named like a credential; it cannot be indexed")
        if len(set(value)) != len(value):
            raise ValueError("duplicate key")
        return value

    @field_validator("actions")
    @classmethod
    def _unique_action_names(cls, value: list[Action]) -> list[Action]:
        seen: set[str] = set()
        for action in value:
            if action.name in seen:
                raise ValueError(f"duplicate action name '{action.name}'")
            seen.add(action.name)
        return value

    @property
    def trigger_type(self) -> str:
        return self.trigger.type

    def step_index(self, name: str) -> int | None:
        """The index of the action called `name`, or None."""
        return next((i for i, action in enumerate(self.actions) if action.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-able camelCase data (stored with each run)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Automation":
        """Rebuild an automation from `to_dict()` output."""
        return cls.model_validate(data)

    @property
    def concurrency_limit(self) -> int | None:
        """The most runs of this automation that may run at once; None: no limit."""
        return self.concurrency.limit if self.concurrency is not None else None


def definition_reference(definition: dict[str, Any]) -> tuple[str, str]:
    """(reference, canonical JSON) of a stored definition: the content hash every backend
    stores it under, and the key its parsed Automation is cached by."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32], text


class _ParsedDefinitions:
    """Stored definitions parsed into Automations, once per reference (least recently used
    dropped first; a process sees few definition versions)."""

    def __init__(self, size: int = 256) -> None:
        self._parsed: OrderedDict[str, Automation] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, definition: dict[str, Any]) -> Automation:
        ref, _ = definition_reference(definition)
        with self._lock:
            found = self._parsed.get(ref)
            if found is not None:
                self._parsed.move_to_end(ref)
                return found
        parsed = Automation.from_dict(definition)
        with self._lock:
            self._parsed[ref] = parsed
            while len(self._parsed) > self._size:
                self._parsed.popitem(last=False)
        return parsed


_PARSED = _ParsedDefinitions()


def stored_automation(definition: dict[str, Any]) -> Automation:
    """The typed Automation of a run's stored definition (parsed once per reference)."""
    return _PARSED.get(definition)


class Catalog:
    """The loaded automations, by name."""

    def __init__(self, automations: Iterable[Automation] = ()) -> None:
        self._by_name = {automation.name: automation for automation in automations}

    def get(self, name: str) -> Automation:
        """The automation called `name`; AutomationNotFound otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise AutomationNotFound(name) from None

    def all(self) -> list[Automation]:
        """Every automation, sorted by name."""
        return [self._by_name[name] for name in sorted(self._by_name)]

    def failure_handlers(
        self, automation_name: str | None = None, status: RunStatus | None = None
    ) -> list[Automation]:
        """Enabled automation-failure handlers; with arguments, those watching that outcome."""
        handlers = [
            a for a in self.all() if a.enabled and isinstance(a.trigger, FailureTrigger)
        ]
        if automation_name is None or status is None:
            return handlers
        return [a for a in handlers if a.trigger.watches(automation_name, status)]

    def cron_automations(self) -> list[Automation]:
        """Enabled automations with a cron trigger."""
        return [a for a in self.all() if a.enabled and isinstance(a.trigger, CronTrigger)]


def load_catalog(path: str | Path, registry: Any) -> Catalog:
    """Load every *.yaml / *.yml under `path` (or one file); DefinitionError lists all problems."""
    # `registry` (actions.registry.Registry) checks each action's type/operator and props.
    from .loader import load  # noqa: PLC0415 - the loader imports the models above

    return load(Path(path), registry)
