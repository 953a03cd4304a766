"""docs/reference.md is generated from the pydantic models and must be current (`make docs`)."""
from __future__ import annotations

from pydantic import Field, create_model

from chalicelib import reference
from chalicelib.actions.registry import ActionSpec, default_registry


def test_reference_matches_the_models():
    assert reference.DOC.read_text(encoding="utf-8") == reference.render(), \
        "docs/reference.md is stale: run `make docs`"
    assert reference.main(["--check"]) == 0


def test_a_changed_props_model_makes_the_reference_stale(monkeypatch, capsys):
    registry = default_registry()
    spec = registry.get("delay", "wait")
    changed = create_model("WaitProps", __base__=spec.props_model,
                           jitter_ms=(int, Field(0, ge=0)))
    registry.register(ActionSpec("delay", "wait", changed, spec.handler, spec.output))
    monkeypatch.setattr(reference, "default_registry", lambda: registry)
    assert "`jitterMs` | integer | `0` | ≥ 0" in reference.render()
    assert reference.main(["--check"]) == 1
    assert "run `make docs`" in capsys.readouterr().err


def test_every_action_and_trigger_has_props_output_and_data_sections():
    text = reference.render()
    for kind in default_registry().known():
        section = text.split(f"### `{kind}`", 1)[1].split("\n### ", 1)[0]
        assert "#### props" in section and "#### output" in section, kind
    for trigger in ("manual", "webhook", "cron", "automation-failure"):
        section = text.split(f"### `{trigger}`", 1)[1].split("\n### ", 1)[0]
        assert "#### definition (`trigger:`)" in section and "#### `trigger.data`" in section
    assert "| `waitedMs` | integer | required |" in text
    assert "| `scheduledAt` | string | required |" in text
