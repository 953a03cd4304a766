"""The Chalice app as a WSGI application, in-process (no server, no socket), for tools that
drive WSGI apps (schemathesis). Requests go through chalice.test's local gateway, with the
answers the deployed gateway responses give (infra/resources.yaml), as the local stack's
request handler does (chalicelib/local/gateway.py): a path (or a method of it) no route
matches is a 404 and a missing `Authorization` a 401, both in the error envelope; a response
without a Content-Type is sent as application/json, as API Gateway's proxy integration and
Chalice's local server send it."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from chalice.local import RouteMatcher
from chalice.test import Client

from chalicelib.api.errors import envelope


class ChaliceWsgi:
    """`ChaliceWsgi(app)` is a WSGI callable answering as the deployed API would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.http = Client(app).http
        self.routes = RouteMatcher(list(app.routes))

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        # PATH_INFO is decoded (as latin-1); encode it again so a "?" or "#" inside a path
        # parameter stays in the path, as it does through API Gateway.
        path = quote(environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
                     safe="/")
        query = environ.get("QUERY_STRING", "")
        target = f"{path}?{query}" if query else path
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = _headers(environ)
        status, answer_headers, answer = self._answer(method, target, headers, body)
        start_response(f"{status} {HTTPStatus(status).phrase}", list(answer_headers.items()))
        return [answer]

    def _answer(self, method: str, target: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            route = self.routes.match_route(target).route
        except ValueError:
            route = None
        if route is None or method not in self.app.routes[route]:
            return _enveloped(404, "NOT_FOUND", f"no route for {method} {target.split('?')[0]}")
        response = self.http.request(method, target, headers=headers, body=body)
        if response.status_code == 401 and b'"Unauthorized"' in (response.body or b"") \
                and b'"success"' not in (response.body or b""):
            # Chalice's own answer to a missing Authorization header.
            return _enveloped(401, "UNAUTHORIZED", "missing or invalid bearer token")
        answer_headers = dict(response.headers)
        if not any(name.lower() == "content-type" for name in answer_headers):
            answer_headers["Content-Type"] = "application/json"
        return response.status_code, answer_headers, response.body or b""


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): value
               for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _enveloped(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return status, headers, json.dumps(envelope(code, message)).encode()
