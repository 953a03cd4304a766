"""Chalice's local HTTP server with API Gateway's answers as the deployed stack gives them.

Deployed, a GatewayResponse (MISSING_AUTHENTICATION_TOKEN, infra/resources.yaml) turns API
Gateway's 403 for a path no route matches into a 404 in the error envelope; this request
handler does the same locally, where Chalice's gateway would answer the 403 itself.
"""
from __future__ import annotations

import json

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    RouteMatcher,
)

from ..api.errors import envelope


class RequestHandler(ChaliceRequestHandler):
    """Unknown paths → 404 with the error envelope; everything else as Chalice does it."""

    def _generic_handle(self) -> None:
        routes = RouteMatcher(list(self.local_gateway._app_object.routes))  # noqa: SLF001
        try:
            routes.match_route(self.path)
        except ValueError:
            path = self.path.split("?", 1)[0]
            body = envelope("NOT_FOUND", f"no route for {self.command} {path}")
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._send_http_response(404, {"Content-Type": "application/json"},
                                     json.dumps(body))
            return
        super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


def local_server(app: object, config: Config, host: str, port: int) -> LocalDevServer:
    """`chalice.local.create_local_server` with RequestHandler."""
    if not isinstance(app, LocalChalice):  # as create_local_server: current_request per thread
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=RequestHandler)
