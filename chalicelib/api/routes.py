"""The API blueprint: importing a route module registers (and documents) its routes.

To add routes, write a module using `common.endpoint` and import it below.
"""
from __future__ import annotations

from . import automations, batches, pages, runs, tokens  # noqa: F401 - importing registers the routes
from .common import api, endpoint
from .openapi import build_document

__all__ = ["api"]


@endpoint("/api/openapi.json", summary="This OpenAPI 3.1 document", role=None)
def openapi_json() -> dict:
    """GET /api/openapi.json (public); `servers` names the URL it was fetched from."""
    return build_document(servers=[{"url": pages.public_url()}])
