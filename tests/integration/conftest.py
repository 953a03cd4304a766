"""Fixtures that start the local stack as a subprocess (see stack_process.py)."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack

import pytest

from .stack_process import StackProcess, running_stack


@pytest.fixture(scope="module")
def local_stack() -> Iterator[StackProcess]:
    """One stack for the module's tests: bundled automations, admin token, no scheduler."""
    with running_stack() as stack:
        yield stack


@pytest.fixture
def start_stack() -> Iterator[Callable[..., StackProcess]]:
    """Start a stack of your own: `start_stack({"AUTOMATIONS_DIR": ..., ...})`; stopped after."""
    with ExitStack() as started:

        def start(env: Mapping[str, str] | None = None, **kwargs) -> StackProcess:
            return started.enter_context(running_stack(env, **kwargs))

        yield start
