"""One EMF record per metric (both dimension sets); the automations `make run` loads."""
from __future__ import annotations

import json

import pytest

from chalicelib.local.emulator import local_automations
from chalicelib.observability import emit
from chalicelib.settings import EXAMPLE_AUTOMATIONS, USER_AUTOMATIONS, get_settings


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_metric_is_printed_once_with_both_dimension_sets(capsys):
    emit("RunsFailed", 1, "billing")
    (record,) = _lines(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AutomationRuns"
    # Per automation for drill-down, and service-wide: the series the alarms watch.
    assert sorted(map(sorted, directive["Dimensions"])) == [["automation", "service"],
                                                             ["service"]]
    assert directive["Metrics"] == [{"Name": "RunsFailed", "Unit": "Count"}]
    assert (record["service"], record["automation"]) == ("automation-runs", "billing")


def test_the_service_dimension_is_the_stacks_name(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "automation-runs-dev")
    get_settings.cache_clear()
    try:
        emit("RunsStarted", 1, "billing", unit="count")
    finally:
        get_settings.cache_clear()
    (record,) = _lines(capsys.readouterr().out)
    assert record["service"] == "automation-runs-dev"


@pytest.mark.parametrize("folder_has_definitions, chosen", [
    (False, EXAMPLE_AUTOMATIONS), (True, USER_AUTOMATIONS)])
def test_make_run_loads_the_examples_until_automations_holds_a_definition(
        tmp_path, monkeypatch, folder_has_definitions, chosen):
    folder = tmp_path / "automations"
    folder.mkdir()
    (folder / "README.md").write_text("not a definition")
    if folder_has_definitions:
        (folder / "team.yaml").write_text("automations: []\n")
    monkeypatch.setattr("chalicelib.local.emulator.USER_AUTOMATIONS", str(folder))
    expected = str(folder) if chosen == USER_AUTOMATIONS else EXAMPLE_AUTOMATIONS
    assert local_automations({}) == expected
    assert local_automations({"AUTOMATIONS_DIR": "/elsewhere"}) == "/elsewhere"
