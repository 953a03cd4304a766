"""The runs API over HTTP for the CLI: JSON in and out, errors as one readable line."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from enum import IntEnum
from typing import Any


class Exit(IntEnum):
    """Exit statuses scripts can tell apart (README, "Command line")."""

    OK = 0
    ERROR = 1  # the API refused the request (400, 413, 5xx) or bad input to the CLI
    USAGE = 2  # unknown command or option (Click's own code)
    UNREACHABLE = 3  # no answer from RUNS_URL
    AUTH = 4  # 401 or 403: RUNS_TOKEN missing, unknown or of too low a role
    NOT_FOUND = 5
    CONFLICT = 6  # 409: e.g. cancelling a run that already ended
    RUN_NOT_COMPLETED = 7  # `replay --wait` / `tail ID`: the run ended other than completed


_BY_STATUS = {401: Exit.AUTH, 403: Exit.AUTH, 404: Exit.NOT_FOUND, 409: Exit.CONFLICT}
URL_HINT = "set RUNS_URL (or --url) to the API's base URL; `make run` prints it"
TOKEN_HINT = "set RUNS_TOKEN (or --token) to a token; `make run` prints one, " \
             "`runs token create --role operator` issues one"


class ApiError(Exception):
    """A non-2xx answer (or no answer) from the runs API; str() is one readable line."""

    def __init__(self, status: int | None, body: dict[str, Any] | None, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.body = body or {}

    @property
    def exit_code(self) -> Exit:
        if self.status is None:
            return Exit.UNREACHABLE
        return _BY_STATUS.get(self.status, Exit.ERROR)


class ApiClient:
    """A small JSON-over-HTTP client of the runs API (standard library only)."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Send one request; the decoded JSON answer, or ApiError."""
        query = urllib.parse.urlencode(
            {k: v for k, v in (params or {}).items() if v not in (None, [])}, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}{'?' + query if query else ''}",
                                         data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, self.token) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(None, None,
                           f"cannot reach {self.url} ({reason}); {URL_HINT}") from None
        except ValueError:
            raise ApiError(None, None, f"{self.url} did not answer JSON; is it the runs API? "
                                       f"{URL_HINT}") from None


def _api_error(exc: urllib.error.HTTPError, token: str | None) -> ApiError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message") or body.get("Message") or exc.reason
    text = " ".join(str(part) for part in (exc.code, body.get("code"), message) if part)
    details = []
    for detail in body.get("details") or []:
        allowed = f" (allowed: {', '.join(map(str, detail['allowed']))})" \
            if detail.get("allowed") else ""
        details.append(f"{detail.get('field') or '-'}: {detail.get('message')}{allowed}")
    if details:
        text += " — " + "; ".join(details)
    if body.get("status"):
        text += f" (current status: {body['status']})"
    if exc.code == 401:
        text += f"; {TOKEN_HINT}" if not token else \
            "; the token is unknown or revoked: check RUNS_TOKEN (and RUNS_URL: another stack?)"
    elif exc.code == 403:
        text += "; the token's role is too low for this: use an operator or admin token"
    return ApiError(exc.code, body, text)
