"""A moto-backed container with a test catalog, installed for the app, plus API tokens."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from chalicelib.bootstrap import Container, use_container
from chalicelib.services.tokens import create_token
from tests.support.stack import catalog_from


def install(settings, tmp_path, yaml_text: str, **overrides: Any) -> Container:
    """Wire the AWS adapters (on moto) with automations from `yaml_text`; loopback HTTP allowed."""
    built = Container(settings=replace(settings, allow_private_http=True),
                      overrides={"catalog": catalog_from(tmp_path, yaml_text), **overrides})
    use_container(built)
    return built


def bearer(deps, role: str = "admin") -> dict[str, str]:
    """Headers with a fresh token of `role`."""
    _, secret = create_token(deps.tokens, role, deps.clock())
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


def post(client, path: str, headers: dict[str, str], body: Any = None):
    """POST JSON through chalice.test.Client."""
    return client.http.post(path, headers=headers,
                            body=json.dumps(body) if body is not None else b"")
