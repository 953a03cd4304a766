"""http/get|post|put|patch|delete: a real HTTP call with urllib3 (SPEC 2.3)."""
from __future__ import annotations

import ipaddress
import json
import socket
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import urllib3
from pydantic import ConfigDict, Field, field_validator
from urllib3.util import parse_url

from ..domain.retry import ActionError
from ..domain.templates import mask_headers
from .base import ActionContext, Output, Props
from .registry import ActionSpec

USER_AGENT = "automation-runs/0.1"
_RETRYABLE_STATUSES = frozenset({408, 429})
Scalar = str | int | float | bool


class HttpProps(Props):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    body: Any = None
    expected_status: int | list[int] | None = None  # None accepts any 2xx

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parsed = parse_url(value)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64: the IPv4 in the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int, allow_private: bool) -> str:
    """One address for `host`; refuses private, loopback and link-local targets unless allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ActionError(f"cannot resolve {host}: {exc}", "NetworkError", retryable=True) from exc
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        refused = [a for a in addresses if not _is_public(a)]
        if refused:
            raise ActionError(
                f"{host} resolves to a non-public address ({refused[0]}); "
                "set ALLOW_PRIVATE_HTTP to call private targets",
                "ForbiddenTarget",
                retryable=False,
            )
    return addresses[0]


def _encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, (bytes, str)):
        return body.encode("utf-8") if isinstance(body, str) else body
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _decode_body(response: urllib3.BaseHTTPResponse, data: bytes) -> Any:
    text = data.decode("utf-8", errors="replace")
    if "json" in (response.headers.get("Content-Type") or "").lower() and text.strip():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def retry_after_ms(value: str | None, now: datetime | None = None) -> int | None:
    """A Retry-After header (delta seconds or HTTP date) in milliseconds."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0, int((moment - (now or datetime.now(timezone.utc))).total_seconds() * 1000))


def _check_status(method: str, url: str, props: HttpProps, response, output, now) -> None:
    status = response.status
    expected = props.expected_status
    if expected is None:
        ok = 200 <= status < 300
    else:
        ok = status in (expected if isinstance(expected, list) else [expected])
    if ok:
        return
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    wait = retry_after_ms(response.headers.get("Retry-After"), now) if retryable else None
    raise ActionError(
        f"{method} {url} answered {status}",
        "HttpError",
        retryable=retryable,
        retry_after_ms=wait,
        detail={"status": status, "body": output["body"]},
    )


class _Watchdog:
    """One deadline for a whole attempt: socket timeouts bound each read, so a server that
    trickles its answer could stretch an attempt for ever; at the deadline the watchdog shuts
    the attempt's socket down, which ends whatever read is in progress."""

    def __init__(self, seconds: float) -> None:
        self.connections: list[urllib3.connection.HTTPConnection] = []
        self.fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()

    def close(self) -> None:
        """Close every connection the attempt opened."""
        for connection in self.connections:
            connection.close()

    def _fire(self) -> None:
        self.fired.set()
        for connection in list(self.connections):
            sock = getattr(connection, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed

    def pool(self, scheme: str, address: str, port: int, host: str,
             timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
        """A one-use pool whose connections the watchdog can shut down."""
        watched = self.connections
        secure = scheme == "https"
        base = urllib3.connection.HTTPSConnection if secure else urllib3.connection.HTTPConnection

        class Watched(base):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                watched.append(self)
                super().connect()

        if secure:
            class WatchedHttpsPool(urllib3.HTTPSConnectionPool):
                ConnectionCls = Watched

            return WatchedHttpsPool(address, port, timeout=timeout, retries=False,
                                    server_hostname=host, assert_hostname=host)

        class WatchedPool(urllib3.HTTPConnectionPool):
            ConnectionCls = Watched

        return WatchedPool(address, port, timeout=timeout, retries=False)


def _request(method: str, props: HttpProps, ctx: ActionContext, watchdog: _Watchdog,
             seconds: float) -> urllib3.BaseHTTPResponse:
    url = parse_url(props.url)
    host = url.host.strip("[]")  # IPv6 literals come bracketed
    port = url.port or (443 if url.scheme == "https" else 80)
    # Connect to the address that was checked, so a second DNS answer cannot swap it.
    address = _resolve(host, port, ctx.settings.allow_private_http)
    headers = {"User-Agent": USER_AGENT, **props.headers}
    if not any(name.lower() == "idempotency-key" for name in headers):
        headers["Idempotency-Key"] = ctx.idempotency_key
    headers["Host"] = url.netloc
    body = _encode_body(props.body, headers)
    target = url.request_uri
    if props.query:
        target += ("&" if url.query else "?") + urlencode(props.query, doseq=True)
    pool = watchdog.pool(url.scheme, address, port, host,
                         urllib3.Timeout(connect=seconds, read=seconds))
    return pool.urlopen(method, target, body=body, headers=headers, redirect=False,
                        assert_same_host=False, preload_content=False, release_conn=False)


def _read_capped(method: str, url: str, response: urllib3.BaseHTTPResponse,
                 limit: int) -> bytes:
    """The body, refused (non-retryable) once it passes `limit` bytes."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(method, url, limit, int(declared))
    chunks, size = [], 0
    for chunk in response.stream(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _too_large(method, url, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(method: str, url: str, limit: int, declared: int | None = None) -> ActionError:
    size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
    return ActionError(
        f"{method} {url} answered {size}; the response size limit is {limit} bytes "
        "(HTTP_MAX_RESPONSE_BYTES)", "ResponseTooLarge", retryable=False,
        detail={"limit": limit, **({"contentLength": declared} if declared else {})},
    )


def _exchange(method: str, props: HttpProps, ctx: ActionContext) -> tuple[Any, bytes]:
    """Send the request and read the capped body, all within the attempt's remaining time."""
    seconds = ctx.remaining_s()
    with _Watchdog(seconds) as watchdog:
        try:
            response = _request(method, props, ctx, watchdog, seconds)
            try:
                return response, _read_capped(method, props.url, response,
                                              ctx.settings.http_max_response_bytes)
            finally:
                response.close()
        except ActionError:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if watchdog.fired.is_set():
                raise ActionError(f"{method} {props.url} timed out after {int(seconds * 1000)} "
                                  "ms", "Timeout", retryable=True, timed_out=True) from exc
            raise
        finally:
            watchdog.close()  # one request per connection: never left open to the server


def call(method: str, props: HttpProps, ctx: ActionContext) -> dict[str, Any]:
    """Perform the request; the output is `{status, headers, body}`."""
    try:
        response, data = _exchange(method, props, ctx)
    except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError subclass
        raise ActionError(f"{method} {props.url} failed: {exc}", "NetworkError",
                          retryable=True) from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise ActionError(f"{method} {props.url} timed out", "Timeout", retryable=True,
                          timed_out=True) from exc
    except urllib3.exceptions.SSLError as exc:
        raise ActionError(f"{method} {props.url}: TLS error: {exc}", "TlsError",
                          retryable=False) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ActionError(f"{method} {props.url} failed: {exc}", "NetworkError",
                          retryable=True) from exc
    output = {
        "status": response.status,
        "headers": mask_headers(dict(response.headers)),
        "body": _decode_body(response, data),
    }
    _check_status(method, props.url, props, response, output, ctx.now())
    return output


def _handler(method: str):
    def handle(props: HttpProps, ctx: ActionContext) -> dict[str, Any]:
        return call(method, props, ctx)

    handle.__doc__ = f"http/{method.lower()}"
    return handle


class HttpOutput(Output):
    """The response (a non-accepted status fails the step, with this as its error detail)."""

    status: int
    headers: dict[str, str] = Field(description="response headers; sensitive ones `[redacted]`")
    body: Any = Field(description="JSON when the response is JSON, else its text")


ACTIONS = [
    ActionSpec("http", method.lower(), HttpProps, _handler(method), HttpOutput)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
]
