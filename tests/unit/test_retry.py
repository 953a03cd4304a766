"""Retry decisions (SPEC 4) as pure functions."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from chalicelib.domain.definitions import RetryPolicy
from chalicelib.domain.errors import TemplateError
from chalicelib.domain.retry import (
    ActionError, Decision, as_action_error, backoff_ms, decide, effective_policy,
)
from chalicelib.domain.statuses import RunStatus


def transient(**extra):
    return ActionError("503", "HttpError", retryable=True, **extra)


PERMANENT = ActionError("404", "HttpError", retryable=False)


def test_effective_policy_prefers_the_step_then_the_automation_then_one_attempt():
    step_policy, automation_policy = RetryPolicy(max_attempts=5), RetryPolicy(max_attempts=2)
    assert effective_policy(SimpleNamespace(retry=step_policy),
                            SimpleNamespace(retry=automation_policy)) is step_policy
    assert effective_policy(SimpleNamespace(retry=None),
                            SimpleNamespace(retry=automation_policy)) is automation_policy
    assert effective_policy(SimpleNamespace(retry=None),
                            SimpleNamespace(retry=None)).max_attempts == 1


def test_fixed_strategy_waits_delay_ms_every_time():
    policy = RetryPolicy(max_attempts=4, delay_ms=250)
    assert [decide(policy, n, transient()).delay_ms for n in (1, 2, 3)] == [250, 250, 250]


def test_exponential_strategy_doubles_and_is_capped_by_max_delay():
    policy = RetryPolicy(max_attempts=10, delay_ms=1000, strategy="exponential",
                         max_delay_ms=5000)
    assert [backoff_ms(policy, n) for n in range(1, 6)] == [1000, 2000, 4000, 5000, 5000]
    assert decide(policy, 3, transient()) == Decision(retry=True, delay_ms=4000)


def test_full_jitter_stays_within_zero_and_the_delay():
    policy = RetryPolicy(max_attempts=10, delay_ms=1000, strategy="exponential", jitter="full")
    rng = random.Random(7)
    delays = [decide(policy, 4, transient(), rng=rng).delay_ms for _ in range(200)]
    assert all(0 <= d <= 8000 for d in delays)
    assert len(set(delays)) > 100  # really random, not constant
    again = random.Random(7)
    assert delays[0] == decide(policy, 4, transient(), rng=again).delay_ms


def test_retry_after_is_honoured_only_when_longer():
    policy = RetryPolicy(max_attempts=3, delay_ms=1000)
    assert decide(policy, 1, transient(retry_after_ms=7000)).delay_ms == 7000
    assert decide(policy, 1, transient(retry_after_ms=200)).delay_ms == 1000


def test_non_retryable_errors_fail_the_run_at_once():
    policy = RetryPolicy(max_attempts=5)
    assert decide(policy, 1, PERMANENT) == Decision(retry=False, status=RunStatus.FAILED)


def test_single_attempt_policy_fails_rather_than_exhausts():
    policy = effective_policy(SimpleNamespace(retry=None), SimpleNamespace(retry=None))
    assert decide(policy, 1, transient()) == Decision(retry=False, status=RunStatus.FAILED)


def test_all_attempts_used_exhausts_the_run():
    policy = RetryPolicy(max_attempts=3)
    assert decide(policy, 2, transient()).retry is True
    assert decide(policy, 3, transient()) == Decision(retry=False, status=RunStatus.EXHAUSTED)


def test_final_attempt_timing_out_times_the_run_out():
    policy = RetryPolicy(max_attempts=2)
    timeout = ActionError("slow", "Timeout", retryable=True, timed_out=True)
    assert decide(policy, 1, timeout).retry is True
    assert decide(policy, 2, timeout) == Decision(retry=False, status=RunStatus.TIMED_OUT)
    assert decide(RetryPolicy(max_attempts=1), 1, timeout).status is RunStatus.TIMED_OUT


@pytest.mark.parametrize("exc, error_type", [
    (TemplateError("template path 'x' not found"), "TemplateError"),
    (ValueError("bug"), "ValueError"),
])
def test_other_exceptions_become_non_retryable_action_errors(exc, error_type):
    error = as_action_error(exc)
    assert (error.error_type, error.retryable) == (error_type, False)
    assert error.to_json()["type"] == error_type
