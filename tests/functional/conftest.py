"""Fixtures of the functional tests: a moto-backed app wired with a test catalog."""
from __future__ import annotations

import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import use_container
from tests.support.apps import install


@pytest.fixture
def wire(aws, settings, tmp_path, http_sink, monkeypatch):
    """`wire(yaml, **overrides)` installs a container with those automations; the HTTP sink's
    URL is the secret SINK (`{{secrets.SINK}}`). Uninstalled after the test."""
    monkeypatch.setenv("RUNS_SECRET_SINK", http_sink.url)
    yield lambda yaml_text, **overrides: install(settings, tmp_path, yaml_text, **overrides)
    use_container(None)


@pytest.fixture
def client(deps):
    """chalice.test.Client over the app, once the module's `deps` are installed."""
    with Client(app) as test_client:
        yield test_client
