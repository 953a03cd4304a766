"""One exception base for the domain; subclasses carry data, not just text."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    code = "ERROR"

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ValidationFailed(DomainError):
    """Bad input; `details` names each bad field."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(message, details=details)
        self.details = details


class NotFound(DomainError):
    code = "NOT_FOUND"


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} not found", run_id=run_id)
        self.run_id = run_id


class AutomationNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"automation {name} not found", name=name)
        self.name = name


class Conflict(DomainError):
    """A state conflict; carries the current status when there is one."""

    code = "CONFLICT"

    def __init__(self, message: str, status: str | None = None, **data: Any) -> None:
        super().__init__(message, status=status, **data)
        self.status = status


class InvalidTransition(Conflict):
    """The requested status change is not in TRANSITIONS, or lost a race."""

    code = "INVALID_TRANSITION"

    def __init__(self, run_id: str, current: str, requested: str) -> None:
        super().__init__(
            f"run {run_id} is {current}; cannot become {requested}",
            status=current,
            run_id=run_id,
            requested=requested,
        )
        self.run_id = run_id
        self.current = current
        self.requested = requested


class StaleRun(InvalidTransition):
    """The run item changed since it was read (same status, newer `version`); `stored` is the
    run as it is now, so the writer can apply its change again."""

    def __init__(self, stored: Any) -> None:
        super().__init__(stored.id, stored.status.value, stored.status.value)
        self.stored = stored


class StepConflict(Conflict):
    """A step claim or result write lost to another executor (claim token mismatch)."""

    code = "STEP_CONFLICT"

    def __init__(self, run_id: str, index: int, status: str | None = None) -> None:
        super().__init__(f"step {index} of run {run_id} is held elsewhere", status=status)
        self.run_id = run_id
        self.index = index


class StepNotWaiting(Conflict):
    """retry-now on a step that waits for no retry or delay; `status` is the step's status."""

    code = "STEP_NOT_WAITING"

    def __init__(self, run_id: str, step: str, status: str, run_status: str) -> None:
        super().__init__(f"step {step} of run {run_id} is {status}, not waiting",
                         status=status)
        self.run_id = run_id
        self.step = step
        self.run_status = run_status


class StepNotFound(NotFound):
    def __init__(self, run_id: str, step: str) -> None:
        super().__init__(f"run {run_id} has no step named {step}")
        self.run_id = run_id
        self.step = step


class AlreadyExists(Conflict):
    """A conditional create found the item already there (idempotency, cron minute)."""

    code = "ALREADY_EXISTS"


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class RateLimited(DomainError):
    """A webhook delivery over its automation's rate limit; nothing was started."""

    code = "RATE_LIMITED"

    def __init__(self, automation: str, per_minute: int, burst: int, retry_after: int) -> None:
        super().__init__(
            f"automation {automation} accepts {per_minute} webhook runs a minute (burst "
            f"{burst}); retry in {retry_after} s", automation=automation)
        self.automation = automation
        self.limit = {"perMinute": per_minute, "burst": burst}
        self.retry_after = retry_after


class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"


class DefinitionError(DomainError):
    """Automation definitions failed validation; one message per problem."""

    code = "DEFINITION_ERROR"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid automation definitions:\n" + "\n".join(problems))
        self.problems = problems


class TemplateError(DomainError):
    """A template referenced a missing path or was malformed; never retried."""

    code = "TEMPLATE_ERROR"
