"""Chalice's local HTTP server with API Gateway's answers as the deployed stack gives them.

Deployed, a GatewayResponse (MISSING_AUTHENTICATION_TOKEN, infra/resources.yaml) turns API
Gateway's 403 for a path no route matches into a 404 in the error envelope; this request
handler does the same locally, where Chalice's gateway would answer the 403 itself.
"""
from __future__ import annotations

import json
import logging
import time

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
    NotAuthorizedError,
    RouteMatcher,
)

from ..api.errors import envelope

log = logging.getLogger("runs.http")
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestHandler(ChaliceRequestHandler):
    """Unknown paths → 404 with the error envelope; everything else as Chalice does it.
    One log line per request (`POST /api/automations/x/trigger 202 3 ms`) instead of an access
    log on stderr: at INFO for writes and errors, at DEBUG for successful reads (a dashboard
    or a client polling a run would fill the terminal, and cost a tenth of each poll)."""

    # Chalice writes a response's headers and body separately: without TCP_NODELAY, a client
    # keeping its connection alive waits for its delayed ACK (about 40 ms) before the body.
    disable_nagle_algorithm = True

    def _generic_handle(self) -> None:
        self._started = time.monotonic()
        try:
            self._routes().match_route(self.path)
        except ValueError:
            path = self.path.split("?", 1)[0]
            body = envelope("NOT_FOUND", f"no route for {self.command} {path}")
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._send_http_response(404, {"Content-Type": "application/json"},
                                     json.dumps(body))
            return
        super()._generic_handle()

    def _routes(self) -> RouteMatcher:
        """The matcher Chalice's gateway routes with (built once per connection)."""
        matcher = getattr(self.local_gateway, "_route_matcher", None)
        if not isinstance(matcher, RouteMatcher):
            matcher = RouteMatcher(list(self.local_gateway._app_object.routes))  # noqa: SLF001
        return matcher

    def _send_http_response_with_body(self, code: int, headers: dict,
                                      body: str | bytes) -> None:
        """As Chalice's, but headers and body leave in one write (one send, not two)."""
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for name, value in headers.items():
            for each in value if isinstance(value, list) else [value]:
                self.send_header(name, each)
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(data)
        self.flush_headers()

    def _send_error_response(self, error: LocalGatewayException) -> None:
        # Chalice's gateway answers a missing Authorization itself ({"message": "Unauthorized"});
        # deployed, the UNAUTHORIZED GatewayResponse gives it the envelope: so does this.
        if isinstance(error, NotAuthorizedError):
            body = envelope("UNAUTHORIZED", "missing or invalid bearer token")
            self._send_http_response(401, {"Content-Type": "application/json",
                                           "WWW-Authenticate": "Bearer"}, json.dumps(body))
            return
        super()._send_error_response(error)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = getattr(code, "value", code)
        read_ok = self.command in READS and isinstance(status, int) and status < 400
        level = logging.DEBUG if read_ok else logging.INFO
        if not log.isEnabledFor(level):
            return
        elapsed_ms = (time.monotonic() - getattr(self, "_started", time.monotonic())) * 1000
        path = self.path.split("?", 1)[0]
        log.log(level, "%s %s %s %.0f ms", self.command, path, status, elapsed_ms)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        log.warning(format, *args)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


def local_server(app: object, config: Config, host: str, port: int) -> LocalDevServer:
    """`chalice.local.create_local_server` with RequestHandler."""
    if not isinstance(app, LocalChalice):  # as create_local_server: current_request per thread
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=RequestHandler)
