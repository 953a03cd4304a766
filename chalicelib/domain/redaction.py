"""The one redactor (SPEC 7): every secret the deployment holds, in every form it may take on its
way through a request or a response, and the values of sensitive headers, become `[redacted]`
before anything is stored or logged. Stack traces keep module-relative frames only."""
from __future__ import annotations

import base64
import json
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words in outputs
# A base64 fragment shorter than this matches ordinary text too often to be worth hiding.
_MIN_ENCODED_LENGTH = 6
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "apikey"}
)
# Any header whose name contains one of these carries a credential (X-Auth-Token,
# X-Amz-Security-Token, X-Client-Secret, X-Signature-256, X-Api-Key, ...).
_SENSITIVE_PARTS = ("token", "secret", "signature", "api-key", "api_key", "password")
_PERCENT = re.compile(r"%[0-9A-F]{2}")

SecretValues = Callable[[], Iterable[str]]


def is_sensitive_header(name: str) -> bool:
    """Authorization, cookies, and any header named like a token, secret, signature or API key."""
    lowered = str(name).lower()
    return lowered in _SENSITIVE_HEADERS or any(part in lowered for part in _SENSITIVE_PARTS)


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `headers` with sensitive values replaced by `[redacted]`."""
    return {key: REDACTED if is_sensitive_header(key) else value for key, value in headers.items()}


def _base64_cores(raw: bytes) -> set[str]:
    """The part of the base64 text of `raw` that does not depend on its neighbours, for each of
    the three alignments it can have inside a longer encoded value."""
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode().rstrip("=")
        start, end = (shift * 8 + 5) // 6, ((shift + len(raw)) * 8) // 6
        core = encoded[start:end]
        if len(core) >= _MIN_ENCODED_LENGTH:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # the URL-safe alphabet
    return cores


def forms_of(secret: str) -> set[str]:
    """Every form of `secret` to hide: raw, URL-encoded (both cases, `+` or `%20` for spaces),
    JSON-escaped (also ASCII-escaped) and base64 (standard and URL-safe, any alignment)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms |= {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in list(forms)}
    forms |= _base64_cores(secret.encode("utf-8"))
    return {form for form in forms if form}


class Redactor:
    """Hides every secret that `values` returns (called on each use; the source caches) plus
    the ones learnt along the way, and sensitive header values inside `headers` maps."""

    def __init__(self, values: SecretValues | None = None) -> None:
        self._values: SecretValues = values or tuple
        self._learnt: set[str] = set()
        self._lock = threading.Lock()
        self._cache: tuple[frozenset[str], tuple[str, ...]] = (frozenset(), ())
        self._reading = threading.local()

    def use(self, values: SecretValues) -> None:
        """Take the deployment's secrets from `values` from now on."""
        self._values = values

    def learn(self, *values: str) -> None:
        """Hide these values too (a secret read outside the source)."""
        with self._lock:
            self._learnt.update(v for v in values if isinstance(v, str))

    def _hidden(self) -> tuple[str, ...]:
        known, hidden = self._cache
        if getattr(self._reading, "active", False):
            # Reading the secrets logs too (botocore): those lines use what is known so far.
            return hidden
        self._reading.active = True
        try:
            values = tuple(self._values())
        finally:
            self._reading.active = False
        secrets = frozenset(
            v for v in (*values, *self._learnt)
            if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH
        )
        if secrets != known:
            forms = set().union(*(forms_of(s) for s in secrets)) if secrets else set()
            # Longest first, so a secret containing another is replaced whole.
            hidden = tuple(sorted(forms, key=len, reverse=True))
            self._cache = (secrets, hidden)
        return hidden

    def text(self, value: str) -> str:
        """`value` with every form of every secret replaced."""
        if getattr(self._reading, "active", False):
            # Logged while the secrets are being read (a client's debug lines): it may hold
            # values not known yet, so none of it is kept.
            return REDACTED
        for form in self._hidden():
            if form in value:
                value = value.replace(form, REDACTED)
        return value

    def __call__(self, value: Any) -> Any:
        """A copy of a JSON value with secrets and sensitive header values redacted."""
        return _redact(value, self._hidden())


def _is_header_map(key: Any, item: Any) -> bool:
    return str(key).lower() == "headers" and isinstance(item, Mapping)


def _redact(value: Any, hidden: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for form in hidden:
            if form in value:
                value = value.replace(form, REDACTED)
        return value
    if isinstance(value, Mapping):
        # Key names are masked only inside header maps: elsewhere a key such as `cookie`
        # or `documentSignature` is ordinary data that later templates must see unchanged.
        return {
            key: _redact(mask_headers(item) if _is_header_map(key, item) else item, hidden)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(item, hidden) for item in value]
    return value


def _import_roots() -> list[str]:
    roots = {str(Path(p).resolve()) for p in sys.path if p and Path(p).is_dir()}
    return sorted(roots, key=len, reverse=True)


def module_relative(filename: str) -> str:
    """`/srv/app/chalicelib/x.py` → `chalicelib/x.py`: the path below the import root."""
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return Path(filename).name
    for root in _import_roots():
        if path.startswith(root + "/"):
            return path[len(root) + 1:]
    return Path(filename).name if Path(filename).is_absolute() else filename


def format_exception(exc: BaseException) -> str:
    """The traceback of `exc` with module-relative file names: no server paths for viewers."""
    summary = traceback.TracebackException.from_exception(exc)
    for part in _chain(summary):
        for frame in part.stack:
            frame.filename = module_relative(frame.filename)
    return "".join(summary.format())


def _chain(summary: traceback.TracebackException) -> Iterable[traceback.TracebackException]:
    seen: set[int] = set()
    pending = [summary]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
