"""The Chalice application class, safe for requests handled on several threads at once."""
from __future__ import annotations

import threading
from typing import Any

from chalice import Chalice


class ThreadSafeChalice(Chalice):
    """Chalice keeps the request being handled (and its Lambda context) in attributes of the
    app object. On Lambda one container handles one request at a time, but the local server
    (`chalice.local`, a threading HTTP server) and `chalice.test.Client` handle requests on
    several threads at once: a handler could read another request's body or headers. Here
    both attributes are kept per thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_per_thread"] = threading.local()  # before Chalice sets the attributes
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def current_request(self) -> Any:
        return getattr(self._per_thread, "current_request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._per_thread.current_request = value

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return getattr(self._per_thread, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._per_thread.lambda_context = value
