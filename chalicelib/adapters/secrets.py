"""Where `{{secrets.NAME}}` comes from: SSM Parameter Store or Secrets Manager through Powertools
Parameters when deployed (all of the stack's secrets in one cached read, so the redactor knows
every one), `RUNS_SECRET_<NAME>` environment variables on a single machine."""
from __future__ import annotations

import threading
import time
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetSecretError

from ..settings import Settings
from .aws_client import LazyClient


class EnvSecrets:
    """`RUNS_SECRET_<NAME>` environment variables (local use), read on every call."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def all(self) -> dict[str, str]:
        """Name → value of every secret."""
        return self._settings.env_secrets()

    def get(self, name: str) -> str | None:
        """The value of one secret, or None."""
        return self._settings.secret(name)

    def values(self) -> list[str]:
        return list(self.all().values())


class _CachedSecrets:
    """The stack's secrets under one path, read together and cached for `max_age` seconds."""

    def __init__(self, settings: Settings, service: str) -> None:
        self._path = settings.secrets_path.rstrip("/") + "/"
        self._max_age = settings.secrets_max_age_s
        self._client = LazyClient(service, settings)
        self._provider: Any = None

    def _read(self) -> dict[str, Any]:
        raise NotImplementedError

    def all(self) -> dict[str, str]:
        """Name → value of every secret of the stack (one request per `max_age`)."""
        return {name: value.decode() if isinstance(value, bytes) else str(value)
                for name, value in self._read().items()}

    def get(self, name: str) -> str | None:
        """The value of one secret, or None."""
        return self.all().get(name)

    def values(self) -> list[str]:
        return list(self.all().values())


class SsmSecrets(_CachedSecrets):
    """SecureStrings `/<stack>/secrets/NAME` (GetParametersByPath, decrypted)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "ssm")

    def _read(self) -> dict[str, Any]:
        if self._provider is None:
            self._provider = SSMProvider(boto3_client=self._client.get())
        return self._provider.get_multiple(self._path, max_age=self._max_age, decrypt=True,
                                           recursive=False)


class SecretsManagerSecrets(_CachedSecrets):
    """Secrets `<stack>/secrets/NAME` (BatchGetSecretValue filtered by that name prefix)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "secretsmanager")
        self._prefix = self._path.lstrip("/")
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def _read(self) -> dict[str, Any]:
        # Powertools caches a by-prefix read under the prefix but answers a cached read with
        # the exact names asked for only (none), so this one keeps its own cache.
        with self._lock:
            if self._cached is None or time.monotonic() >= self._cached[0]:
                self._cached = (time.monotonic() + self._max_age, self._fetch())
            return self._cached[1]

    def _fetch(self) -> dict[str, Any]:
        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self._client.get())
        try:
            found = self._provider.get_multiple([self._prefix], force_fetch=True)
        except GetSecretError as exc:
            if "No secrets found" in str(exc):  # Powertools' answer for an empty prefix
                return {}
            raise
        return {name[len(self._prefix):]: value for name, value in found.items()
                if name.startswith(self._prefix) and "/" not in name[len(self._prefix):]}


def secret_source(settings: Settings):
    """The secret source `settings.secrets_backend` names."""
    sources = {"env": EnvSecrets, "ssm": SsmSecrets, "secretsmanager": SecretsManagerSecrets}
    return sources[settings.secrets_backend](settings)
