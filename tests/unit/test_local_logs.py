"""Quiet local terminal: one readable line per record with POWERTOOLS_DEV (set by the local
stack), JSON lines and EMF metrics otherwise (as on AWS)."""
from __future__ import annotations

import json
import logging

from chalicelib.local.emulator import local_environment
from chalicelib.observability import OneLineFormatter, _dev_mode, emit


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("automation-runs", logging.INFO, "executor.py", 1, message,
                               None, None)
    record.__dict__.update(extra)
    return record


def test_one_line_formatter_keeps_the_keys_that_matter():
    line = OneLineFormatter().format(_record("step_completed", action="step_completed",
                                             run_id="r-1", step="total", attempt=2))
    assert "\n" not in line and not line.lstrip().startswith("{")
    assert line.split()[1:] == ["INFO", "step_completed", "run_id=r-1", "step=total",
                                "attempt=2"]


def test_the_local_stack_turns_on_powertools_dev_mode():
    env = local_environment("http://127.0.0.1:1", "http://127.0.0.1:2", {})
    assert env["POWERTOOLS_DEV"] == "true"


def test_metrics_print_emf_unless_dev_mode(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    assert not _dev_mode()
    emit("RunsStarted", 1, "a")
    record = json.loads(capsys.readouterr().out)
    assert record["RunsStarted"] == [1.0] and record["automation"] == "a"
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    assert _dev_mode()
    emit("RunsStarted", 1, "a")
    assert capsys.readouterr().out == ""
