"""A local HTTP sink on 127.0.0.1 for tests: records requests, counts calls per path, and
answers with scripted responses (failures with a status, Retry-After or a delay) on demand.

    with HttpSink() as sink:
        sink.fail("/hook", status=503, times=2, retry_after="1")
        ...  # call sink.url + "/hook"
        assert sink.calls("/hook") == 3
        assert sink.last("/hook").headers["Idempotency-Key"] == "run:step"
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request the sink received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A request header, looked up case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status, JSON (or text/bytes) body, headers, and a delay before it."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class HttpSink:
    """A threaded HTTP server on 127.0.0.1; the default answer echoes the request as JSON."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> "HttpSink":
        """Listen on a free port in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="http-sink")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (requests still sleeping in a delay are abandoned)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "HttpSink":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:54321` (no trailing slash)."""
        assert self._server is not None, "sink not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # scripting -------------------------------------------------------------------------
    def respond(self, path: str, status: int = 200, body: Any = None,
                headers: dict[str, str] | None = None, delay_s: float = 0.0) -> None:
        """Answer every request to `path` this way (after any queued replies are used up)."""
        with self._lock:
            self._defaults[path] = Reply(status, body, headers or {}, delay_s)

    def enqueue(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with these replies, one each, in order."""
        with self._lock:
            self._scripts[path].extend(replies)

    def fail(self, path: str, status: int = 503, times: int = 1, retry_after: str | None = None,
             delay_s: float = 0.0, body: Any = None) -> None:
        """The next `times` requests to `path` answer `status` (with Retry-After if given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        reply = Reply(status, body if body is not None else {"error": status}, headers, delay_s)
        self.enqueue(path, *([reply] * times))

    def delay(self, path: str, seconds: float, times: int = 1) -> None:
        """The next `times` requests to `path` wait `seconds` before the echo answer."""
        self.enqueue(path, *([Reply(delay_s=seconds)] * times))

    def reset(self) -> None:
        """Forget requests, scripts and default answers."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._defaults.clear()

    # inspection ------------------------------------------------------------------------
    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def calls(self, path: str) -> int:
        """How many requests reached `path` (query string excluded)."""
        return len(self.requests_to(path))

    def last(self, path: str | None = None) -> Recorded:
        found = self.requests_to(path) if path is not None else self.requests
        assert found, f"no request to {path or 'the sink'}"
        return found[-1]

    # server side -----------------------------------------------------------------------
    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self._requests.append(request)
            script = self._scripts.get(request.path)
            if script:
                return script.popleft()
            return self._defaults.get(request.path, Reply())


def _encode(reply: Reply, request: Recorded) -> tuple[bytes, dict[str, str]]:
    headers = dict(reply.headers)
    body = reply.body
    if body is None:  # echo
        body = {"method": request.method, "path": request.path, "query": request.query,
                "headers": request.headers, "body": request.text}
    if isinstance(body, bytes):
        return body, headers
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body.encode(), headers
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode(), headers


def _handler_for(sink: HttpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Recorded(self.command, parts.path, parse_qs(parts.query),
                               dict(self.headers.items()), self.rfile.read(length))
            reply = sink._record(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            body, headers = _encode(reply, request)
            try:
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. a timeout test)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

    return Handler
