"""Run `python -m chalicelib.local` in a subprocess, as a user would, and talk to it over HTTP."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"local stack ready on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
# Never let the subprocess reach an endpoint or profile of the test environment.
_INHERITED_AWS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
                  "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "RUNS_MOTO_PORT", "RUNS_BACKEND",
                  "RUNS_DB")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or the text when it is not JSON


@dataclass
class StackProcess:
    """A running local stack: its process, API URL, admin token and captured output."""

    process: subprocess.Popen
    token: str
    url: str = ""
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return "".join(self.lines)

    def request(self, method: str, path: str, *, body: Any = None, token: str | None = "",
                headers: Mapping[str, str] | None = None, timeout: float = 30) -> Response:
        """Send one request; token "" (default) uses the admin token, None sends none."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        bearer = self.token if token == "" else token
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return _response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            return _response(error.code, error.headers, error.read())

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, body=body, **kwargs)

    def wait_for(self, path: str, predicate, *, timeout: float = 30,
                 interval: float = 0.25) -> Response:
        """GET `path` until `predicate(response)` holds; AssertionError with the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(path)
            if predicate(response):
                return response
            if time.monotonic() > deadline:
                raise AssertionError(f"GET {path} never matched; last: {response.status} "
                                     f"{response.body}\n--- stack output ---\n{self.output}")
            time.sleep(interval)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` (as Ctrl-C or a service manager would) and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Wait for the process to exit and its output to be read; returns the exit code."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"stack did not exit within {timeout} s:\n{self.output}")
        if self.reader is not None:
            self.reader.join(timeout=5)
        return code


def _response(status: int, headers: Mapping[str, str], raw: bytes) -> Response:
    text = raw.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text
    return Response(status, {key.lower(): value for key, value in headers.items()}, body)


def launch(env: Mapping[str, str] | None = None, *, token: str = "integration-admin-token",
           port: int | None = None) -> StackProcess:
    """Start the stack process and a thread collecting its output (does not wait)."""
    environ = {key: value for key, value in os.environ.items() if key not in _INHERITED_AWS}
    environ.update({
        # A database file of its own (default backend: sqlite); pass RUNS_DB to share one.
        "RUNS_DB": str(Path(tempfile.mkdtemp(prefix="runs-it-")) / "runs.db"),
        "RUNS_PORT": str(port or free_port()),
        "RUNS_DEV_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
        "RUNS_TICK_SECONDS": "0",  # no cron runs appearing mid-test unless a test asks
    })
    environ.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local"], cwd=REPO, env=environ, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1,
    )
    stack = StackProcess(process=process, token=token)
    stack.reader = threading.Thread(target=_collect, args=(process, stack.lines), daemon=True)
    stack.reader.start()
    return stack


def _collect(process: subprocess.Popen, lines: list[str]) -> None:
    for line in process.stdout:
        lines.append(line)


def wait_until_ready(stack: StackProcess, timeout: float = START_TIMEOUT_S) -> StackProcess:
    """Block until the process prints its URL; AssertionError with its output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = READY.search(stack.output)
        if match:
            stack.url = match.group(1)
            return stack
        if stack.process.poll() is not None:
            code = stack.wait()
            raise AssertionError(f"stack exited with {code}:\n{stack.output}")
        time.sleep(0.05)
    stack.process.kill()
    raise AssertionError(f"stack not ready within {timeout} s:\n{stack.output}")


@contextmanager
def running_stack(env: Mapping[str, str] | None = None, **kwargs: Any) -> Iterator[StackProcess]:
    """A started stack, stopped with SIGTERM on exit (killed if it hangs)."""
    stack = launch(env, **kwargs)
    try:
        yield wait_until_ready(stack)
    finally:
        if stack.process.poll() is None:
            stack.stop()
