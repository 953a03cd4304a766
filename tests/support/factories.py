"""Factories for contract tests: every field has a sensible default, `**overrides` the rest."""
from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.domain.model import Run, Step
from chalicelib.domain.statuses import RunStatus

BASE_TIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
_sequence = itertools.count()


def definition(name: str = "welcome-email", *actions: dict[str, Any],
               **fields: Any) -> dict[str, Any]:
    """A stored definition as start_run writes it (`Automation.to_dict()`): a manual
    automation, by default with one `http/get` action."""
    return {"name": name, "trigger": {"type": "manual"},
            "actions": list(actions) or [{"name": "fetchUser", "type": "http", "operator": "get"}],
            **fields}


def make_run(**overrides: Any) -> Run:
    """A pending manual run, created one second after the previous one made here."""
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "automation_name": "welcome-email",
        "status": RunStatus.PENDING,
        "trigger_type": "manual",
        "trigger_data": {"userId": 42, "tags": ["a", "b"], "ratio": 0.5},
        "created_at": BASE_TIME + timedelta(seconds=next(_sequence)),
        "definition": definition(),
    }
    fields.update(overrides)
    return Run(**fields)


def make_step(index: int = 0, **overrides: Any) -> Step:
    """A pending data/set step."""
    fields: dict[str, Any] = {"index": index, "name": f"step{index}", "type": "data",
                              "operator": "set"}
    fields.update(overrides)
    return Step(**fields)
