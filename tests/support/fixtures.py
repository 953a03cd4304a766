"""Pytest fixtures and factories shared across test suites (import them in conftest.py)."""
from __future__ import annotations

from typing import Any

import pytest

from chalicelib.actions.base import ActionContext
from chalicelib.settings import Settings

from .http_sink import HttpSink


@pytest.fixture
def http_sink():
    """A started HttpSink on 127.0.0.1, stopped after the test."""
    with HttpSink() as sink:
        yield sink


def action_context(**overrides: Any) -> ActionContext:
    """An ActionContext for one attempt of step `step` of run `run-1`; override any field."""
    values: dict[str, Any] = {
        "run_id": "run-1",
        "step_name": "step",
        "props": {},
        "settings": Settings(allow_private_http=True),
        "automation_name": "test-automation",
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return ActionContext(**values)
