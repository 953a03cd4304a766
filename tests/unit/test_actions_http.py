"""http/* actions against a real local HTTP server."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from chalicelib.actions.http import retry_after_ms
from chalicelib.actions.registry import default_registry
from chalicelib.domain.retry import ActionError
from chalicelib.settings import Settings
from tests.support.fixtures import action_context

REGISTRY = default_registry()


def run(method: str, **props):
    ctx_fields = props.pop("ctx", {})
    return REGISTRY.execute("http", method, action_context(props=props, **ctx_fields))


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_each_method_reaches_the_server_and_returns_status_headers_and_json_body(
    http_sink, method
):
    output = run(method, url=f"{http_sink.url}/things")
    assert output["status"] == 200
    assert output["headers"]["Content-Type"] == "application/json"
    assert output["body"]["method"] == method.upper()
    assert http_sink.calls("/things") == 1


def test_query_body_and_headers_are_sent_with_the_idempotency_key(http_sink):
    run("post", url=f"{http_sink.url}/orders?fixed=1",
        query={"page": 2, "tag": ["a", "b"]},
        headers={"X-Trace": "abc", "X-Count": 3},
        body={"order": {"id": 7}})
    request = http_sink.last("/orders")
    assert request.query == {"fixed": ["1"], "page": ["2"], "tag": ["a", "b"]}
    assert request.json() == {"order": {"id": 7}}
    assert request.header("content-type") == "application/json"
    assert request.header("x-trace") == "abc" and request.header("x-count") == "3"
    assert request.header("idempotency-key") == "run-1:step"
    assert request.header("host") == http_sink.url.removeprefix("http://")


def test_text_bodies_are_sent_and_returned_as_text(http_sink):
    http_sink.respond("/text", body="plain answer")
    output = run("put", url=f"{http_sink.url}/text", body="raw text",
                 headers={"Content-Type": "text/plain"})
    assert output["body"] == "plain answer"
    assert http_sink.last("/text").text == "raw text"


def test_expected_status_accepts_listed_codes_and_rejects_others(http_sink):
    http_sink.respond("/created", status=201, body={"id": 1})
    assert run("post", url=f"{http_sink.url}/created", expectedStatus=201)["body"] == {"id": 1}
    assert run("post", url=f"{http_sink.url}/created", expectedStatus=[200, 201])["status"] == 201
    with pytest.raises(ActionError) as raised:
        run("post", url=f"{http_sink.url}/created", expectedStatus=200)
    assert raised.value.retryable is False


def test_unexpected_success_of_a_non_2xx_is_accepted_when_listed(http_sink):
    http_sink.respond("/gone", status=404, body={"missing": True})
    assert run("get", url=f"{http_sink.url}/gone", expectedStatus=404)["status"] == 404


def test_404_is_not_retryable(http_sink):
    http_sink.respond("/missing", status=404, body={"error": "nope"})
    with pytest.raises(ActionError) as raised:
        run("get", url=f"{http_sink.url}/missing")
    error = raised.value
    assert (error.error_type, error.retryable) == ("HttpError", False)
    assert error.detail == {"status": 404, "body": {"error": "nope"}}


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_transient_statuses_are_retryable_with_retry_after(http_sink, status):
    http_sink.fail("/busy", status=status, retry_after="3")
    with pytest.raises(ActionError) as raised:
        run("get", url=f"{http_sink.url}/busy")
    assert raised.value.retryable is True
    assert raised.value.retry_after_ms == 3000
    assert run("get", url=f"{http_sink.url}/busy")["status"] == 200  # the failure was one-off


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert retry_after_ms("120", now) == 120_000
    assert retry_after_ms(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30_000
    assert retry_after_ms(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert retry_after_ms("soon", now) is None and retry_after_ms(None, now) is None


def test_slow_answer_is_a_retryable_timeout(http_sink):
    http_sink.delay("/slow", seconds=2)
    with pytest.raises(ActionError) as raised:
        run("get", url=f"{http_sink.url}/slow", ctx={"timeout_s": 0.3})
    error = raised.value
    assert (error.error_type, error.retryable, error.timed_out) == ("Timeout", True, True)


@contextmanager
def trickling_server(body_bytes: int, every_s: float, *, chunked: bool = False):
    """A raw HTTP server that answers at once, then sends its body one byte per `every_s`
    (each socket read is quick, the whole answer is not)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_bytes}"
            connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{length}"
                               "\r\n\r\n".encode())
            try:
                for _ in range(body_bytes):
                    if stop.wait(every_s):
                        return
                    connection.sendall(b"1\r\nx\r\n" if chunked else b"x")
                if chunked:
                    connection.sendall(b"0\r\n\r\n")
            except OSError:
                return  # the client hung up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_a_server_trickling_its_answer_is_cut_off_at_the_attempt_timeout():
    with trickling_server(body_bytes=40, every_s=0.1) as url:  # 4 s in all, 0.1 s per read
        started = time.monotonic()
        with pytest.raises(ActionError) as raised:
            run("get", url=f"{url}/trickle", ctx={"timeout_s": 0.5})
        elapsed = time.monotonic() - started
    error = raised.value
    assert (error.error_type, error.retryable, error.timed_out) == ("Timeout", True, True)
    assert elapsed < 2, f"the attempt took {elapsed:.1f} s, not about its 0.5 s timeout"


def test_a_response_over_the_size_limit_is_a_clear_non_retryable_error(http_sink):
    http_sink.respond("/big", body="x" * 3000, headers={"Content-Type": "text/plain"})
    small = Settings(allow_private_http=True, http_max_response_bytes=1024)
    with pytest.raises(ActionError) as raised:
        run("get", url=f"{http_sink.url}/big", ctx={"settings": small})
    error = raised.value
    assert (error.error_type, error.retryable) == ("ResponseTooLarge", False)
    assert "the response size limit is 1024 bytes" in error.message
    assert run("get", url=f"{http_sink.url}/big")["body"] == "x" * 3000  # under the default


def test_a_body_without_a_length_is_cut_off_at_the_size_limit():
    small = Settings(allow_private_http=True, http_max_response_bytes=10)
    with trickling_server(body_bytes=50, every_s=0.001, chunked=True) as url:
        with pytest.raises(ActionError) as raised:
            run("get", url=f"{url}/chunked", ctx={"settings": small})
    assert (raised.value.error_type, raised.value.retryable) == ("ResponseTooLarge", False)


def test_the_default_response_size_limit_is_one_megabyte_and_a_setting():
    assert Settings().http_max_response_bytes == 1024 * 1024
    assert Settings.from_env({"HTTP_MAX_RESPONSE_BYTES": "2048"}).http_max_response_bytes == 2048


def test_connection_refused_is_a_retryable_network_error(http_sink):
    url = f"{http_sink.url}/x"
    http_sink.stop()
    with pytest.raises(ActionError) as raised:
        run("get", url=url)
    assert (raised.value.error_type, raised.value.retryable) == ("NetworkError", True)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x", "http://localhost:9/x", "http://10.1.2.3/x",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x", "http://192.168.0.1/",
    # IPv6 forms that carry a private IPv4 address: compatible, NAT64, 6to4, mapped.
    "http://[::127.0.0.1]:9/x", "http://[64:ff9b::7f00:1]:9/x", "http://[2002:7f00:1::]:9/x",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "http://[::ffff:10.0.0.1]/",
])
def test_private_targets_are_refused_unless_allowed(url):
    ctx = action_context(props={"url": url}, settings=Settings(allow_private_http=False))
    with pytest.raises(ActionError) as raised:
        REGISTRY.execute("http", "get", ctx)
    assert (raised.value.error_type, raised.value.retryable) == ("ForbiddenTarget", False)


def test_private_sink_is_reachable_when_allowed(http_sink):
    assert run("get", url=f"{http_sink.url}/ok")["status"] == 200


def test_rendered_props_are_validated_again():
    with pytest.raises(ActionError) as raised:
        run("get", url="https://example.com", expectedStatus="not-a-status")
    assert (raised.value.error_type, raised.value.retryable) == ("ValidationError", False)
    assert "expectedStatus" in raised.value.message


def test_sensitive_response_headers_are_masked(http_sink):
    http_sink.respond("/login", body={}, headers={"Set-Cookie": "session=abc"})
    assert run("post", url=f"{http_sink.url}/login")["headers"]["Set-Cookie"] == "[redacted]"


@pytest.mark.parametrize("address,public", [
    ("64:ff9b::808:808", True), ("2002:808:808::1", True), ("2001:4860:4860::8888", True),
    ("::127.0.0.1", False), ("64:ff9b::7f00:1", False), ("2002:a00:1::", False),
    ("64:ff9b:1::a00:1", False), ("::", False),
])
def test_ipv6_addresses_are_judged_by_the_ipv4_address_they_carry(address, public):
    from chalicelib.actions.http import _is_public

    assert _is_public(address) is public


def test_the_local_stack_keeps_allow_private_http_false_when_asked():
    from chalicelib.local.emulator import local_environment

    assert local_environment("http://m", "http://a", {})["ALLOW_PRIVATE_HTTP"] == "true"
    refused = local_environment("http://m", "http://a", {"ALLOW_PRIVATE_HTTP": "false"})
    assert refused["ALLOW_PRIVATE_HTTP"] == "false"


def test_the_sqlite_local_stack_keeps_allow_private_http_false_when_asked():
    from chalicelib.local.single_machine import sqlite_environment

    assert sqlite_environment("db", "http://a", {})["ALLOW_PRIVATE_HTTP"] == "true"
    refused = sqlite_environment("db", "http://a", {"ALLOW_PRIVATE_HTTP": "false"})
    assert refused["ALLOW_PRIVATE_HTTP"] == "false"
