"""Retry as a pure decision (SPEC 4): whether to try again, after how long, or how the run ends."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from .definitions import Action, Automation, RetryPolicy
from .errors import DomainError, TemplateError
from .statuses import RunStatus


class ActionError(DomainError):
    """An action attempt failed; carries what the retry decision needs."""

    code = "ACTION_ERROR"

    def __init__(
        self,
        message: str,
        error_type: str,
        retryable: bool,
        retry_after_ms: int | None = None,
        timed_out: bool = False,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, error_type=error_type, retryable=retryable)
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.timed_out = timed_out
        self.detail = detail or {}

    def to_json(self) -> dict[str, Any]:
        """The step's recorded `error`."""
        body: dict[str, Any] = {"message": self.message, "type": self.error_type,
                                "retryable": self.retryable}
        if self.timed_out:
            body["timedOut"] = True
        if self.detail:
            body["detail"] = self.detail
        return body


def as_action_error(exc: BaseException) -> ActionError:
    """Classify any exception from rendering or running an action (unknown ones never retry)."""
    if isinstance(exc, ActionError):
        return exc
    if isinstance(exc, TemplateError):
        return ActionError(exc.message, "TemplateError", retryable=False)
    if isinstance(exc, DomainError):
        return ActionError(exc.message, type(exc).__name__, retryable=False)
    return ActionError(str(exc) or type(exc).__name__, type(exc).__name__, retryable=False)


class Policy(Protocol):
    """The fields of a retry policy (definitions.RetryPolicy satisfies it)."""

    max_attempts: int
    delay_ms: int
    strategy: str
    max_delay_ms: int
    jitter: str


# `{maxAttempts: 1}`: what applies when neither the step nor the automation has a policy
# (the other fields keep RetryPolicy's own defaults, written once there).
NO_RETRY = RetryPolicy(max_attempts=1)


def effective_policy(step: Action, automation: Automation) -> RetryPolicy:
    """The step's own policy, else the automation's, else a single attempt: the one lookup
    of the policy the executor applies."""
    return step.retry or automation.retry or NO_RETRY


@dataclass(frozen=True)
class Decision:
    """Retry after `delay_ms`, or stop; when stopping, `status` is how the run ends."""

    retry: bool
    delay_ms: int = 0
    status: RunStatus | None = None  # None when retrying


def backoff_ms(policy: Policy, attempt: int) -> int:
    """The wait before attempt `attempt + 1`, without jitter or Retry-After."""
    if policy.strategy == "exponential":
        return int(min(policy.delay_ms * 2 ** (attempt - 1), policy.max_delay_ms))
    return int(policy.delay_ms)


def decide(
    policy: Policy, attempt: int, error: ActionError, rng: random.Random | Any = random
) -> Decision:
    """What to do after attempt number `attempt` (1-based) failed with `error`."""
    if error.retryable and attempt < policy.max_attempts:
        delay = backoff_ms(policy, attempt)
        if policy.jitter == "full":
            delay = int(rng.uniform(0, delay))
        if error.retry_after_ms is not None and error.retry_after_ms > delay:
            delay = int(error.retry_after_ms)
        return Decision(retry=True, delay_ms=delay)
    return Decision(retry=False, status=final_status(policy, error))


def final_status(policy: Policy, error: ActionError) -> RunStatus:
    """The run's status when a step fails for good (without continueOnError)."""
    if error.timed_out:
        return RunStatus.TIMED_OUT
    if error.retryable and policy.max_attempts > 1:
        return RunStatus.EXHAUSTED
    return RunStatus.FAILED
