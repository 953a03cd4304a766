"""The AWS side of the local stack: a moto server on loopback and the environment pointing at it.

Nothing here imports the application: the environment must be in place before `app` or any
module that reads settings is imported, because Chalice decorators and PynamoDB models read
their names at import.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from ..domain.loader import definition_files
from ..settings import EXAMPLE_AUTOMATIONS, USER_AUTOMATIONS

LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"

# Service-specific endpoints or a profile would send some calls past the local moto server.
_SHADOWING_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB",
                        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "AWS_ENDPOINT_URL_SQS",
                        "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SES",
                        "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_EVENTBRIDGE")


class StackError(Exception):
    """The local stack cannot start as configured; the message says what to change."""


class PortInUse(StackError):
    """A port the local stack needs is taken by another process."""

    def __init__(self, port: int, variable: str) -> None:
        super().__init__(
            f"port {port} on {LOOPBACK} is already in use; stop the other process "
            f"or set {variable} to a free port"
        )
        self.port = port
        self.variable = variable


def ensure_port_free(port: int, variable: str) -> None:
    """Raise PortInUse when `port` cannot be bound on loopback (0 always passes)."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Same option as the HTTP servers, so a socket lingering in TIME_WAIT is not "in use".
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((LOOPBACK, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port, variable) from exc
        raise
    finally:
        probe.close()


class MotoEmulator:
    """moto's threaded server on loopback, speaking the AWS wire protocol."""

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self._server = None
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        """The endpoint URL every AWS client of the process should use."""
        if self.port is None:
            raise RuntimeError("the moto server is not started")
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> str:
        """Start the server (port 0 picks a free one); returns its endpoint URL."""
        from moto.server import ThreadedMotoServer

        from .atomic import make_moto_dynamodb_atomic

        make_moto_dynamodb_atomic()  # conditional writes race-free, as on DynamoDB
        # ThreadedMotoServer.start() waits for ever if the bind fails in its thread: check first.
        ensure_port_free(self.requested_port, "RUNS_MOTO_PORT")
        # One line per AWS request (workers long-poll continuously) would drown the stack's log.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.requested_port,
                                          verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self.endpoint

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        if self._server is not None:
            self._server.stop()
            self._server = None


def local_automations(current: Mapping[str, str]) -> str:
    """AUTOMATIONS_DIR when set; else `automations/` once it holds a definition, else the
    examples (so a new user's first `make run` has something to run)."""
    if current.get("AUTOMATIONS_DIR"):
        return current["AUTOMATIONS_DIR"]
    if definition_files(Path(USER_AUTOMATIONS)):
        return USER_AUTOMATIONS
    return EXAMPLE_AUTOMATIONS


def local_environment(endpoint: str, api_url: str,
                      current: Mapping[str, str]) -> dict[str, str]:
    """The variables that point the application at the local moto server and API."""
    region = current.get("AWS_REGION") or current.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return {
        "AUTOMATIONS_DIR": local_automations(current),
        "AWS_ENDPOINT_URL": endpoint,
        # Fake credentials: they only ever reach the local moto server.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # Quiet terminal: Powertools' dev switch stops metric blobs, and the service's logger
        # prints one line per record (observability.OneLineFormatter) instead of JSON.
        "POWERTOOLS_DEV": "true",
        # Example automations call services on loopback (including this stack's own API),
        # unless the user said ALLOW_PRIVATE_HTTP=false.
        "ALLOW_PRIVATE_HTTP": current.get("ALLOW_PRIVATE_HTTP") or "true",
        "RUNS_SECRET_RUNS_BASE_URL": api_url,
    }


def apply_environment(values: Mapping[str, str],
                      environ: MutableMapping[str, str] | None = None) -> dict[str, str | None]:
    """Set `values` (and drop variables that would bypass them); returns the previous values."""
    environ = os.environ if environ is None else environ
    previous: dict[str, str | None] = {}
    for name in _SHADOWING_VARIABLES:
        if name in environ:
            previous[name] = environ.pop(name)
    for name, value in values.items():
        previous.setdefault(name, environ.get(name))
        environ[name] = value
    return previous


def restore_environment(previous: Mapping[str, str | None],
                        environ: MutableMapping[str, str] | None = None) -> None:
    """Undo apply_environment."""
    environ = os.environ if environ is None else environ
    for name, value in previous.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
