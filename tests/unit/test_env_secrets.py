"""`RUNS_SECRET_<NAME>` variables as the redactor reads them: on every call, so a variable set
or changed while the process runs is redacted from the next write or log line on."""
from __future__ import annotations

import os

from chalicelib.settings import Settings


def test_env_secrets_are_every_non_empty_runs_secret_variable_read_at_each_call(monkeypatch):
    settings = Settings.from_env()
    for name in [key for key in os.environ if key.startswith("RUNS_SECRET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RUNS_SECRET_API_KEY", "first-value")
    monkeypatch.setenv("RUNS_SECRET_EMPTY", "")
    monkeypatch.setenv("RUNS_SECRET_UMLAUT_Ü", "wört")
    monkeypatch.setenv("NOT_A_RUNS_SECRET_X", "ignored")
    assert settings.env_secrets() == {"API_KEY": "first-value", "UMLAUT_Ü": "wört"}

    monkeypatch.setenv("RUNS_SECRET_API_KEY", "second-value")
    monkeypatch.setenv("RUNS_SECRET_NEW", "added-later")
    monkeypatch.delenv("RUNS_SECRET_UMLAUT_Ü")
    assert settings.env_secrets() == {"API_KEY": "second-value", "NEW": "added-later"}


def test_env_secrets_without_a_bytes_environment_read_the_mapping(monkeypatch):
    """Where os.environ keeps no bytes (Windows), the same answer from os.environ itself."""
    monkeypatch.setattr(os, "supports_bytes_environ", False)
    monkeypatch.setenv("RUNS_SECRET_API_KEY", "a-value")
    assert Settings.from_env().env_secrets()["API_KEY"] == "a-value"
