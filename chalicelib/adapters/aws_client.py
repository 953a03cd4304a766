"""One lazily built boto3 client per adapter (a new client costs ~150 ms; build it once)."""
from __future__ import annotations

import threading
from typing import Any

import boto3

from ..settings import Settings


class LazyClient:
    """Builds the boto3 client of `service` on first use; endpoints from AWS_ENDPOINT_URL*."""

    def __init__(self, service: str, settings: Settings, client: Any = None) -> None:
        self._service = service
        self._region = settings.region
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The client (built once, thread-safely: boto3's default session is not)."""
        with self._lock:
            if self._client is None:
                session = boto3.session.Session(region_name=self._region)
                self._client = session.client(self._service)
            return self._client
