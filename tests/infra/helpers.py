"""Small readers of the packaged template for the infra tests."""
from __future__ import annotations

from typing import Any


def props(resources: dict[str, dict[str, Any]], logical_id: str) -> dict[str, Any]:
    """The Properties of one resource, failing clearly when it is missing."""
    assert logical_id in resources, f"{logical_id} missing from the packaged template"
    return resources[logical_id].get("Properties", {})


def of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Logical id → Properties of every resource of one type."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in resources.items()
        if resource.get("Type") == kind
    }


def get_att(logical_id: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}
