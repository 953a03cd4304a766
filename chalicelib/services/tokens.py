"""API bearer tokens: roles, issuing (secret shown once, stored hashed) and authentication."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone
from enum import Enum

from ..domain.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from .ports import TokenRecord, TokenStore

SECRET_PREFIX = "rt_"
MIN_SECRET_LENGTH = 8
TOUCH_INTERVAL = timedelta(minutes=1)


class TokenNotFound(NotFound):
    """No token has this id (never issued, or already revoked)."""

    code = "TOKEN_NOT_FOUND"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id} not found", tokenId=token_id)


class Role(str, Enum):
    VIEWER = "viewer"  # read runs and automations
    OPERATOR = "operator"  # + trigger, replay, cancel
    ADMIN = "admin"  # + replay with triggerData, token management

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, required: "Role") -> bool:
        """True when this role includes everything `required` may do."""
        return self.rank >= required.rank


_RANKS = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest under which a token is stored (the secret itself never is)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_role(value: str) -> Role:
    """The Role named `value`; ValidationFailed naming the allowed roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        allowed = [role.value for role in Role]
        raise ValidationFailed(
            f"role must be one of {', '.join(allowed)}",
            [{"field": "role", "message": "unknown role", "allowed": allowed}],
        ) from None


def create_token(
    store: TokenStore,
    role: str,
    now: datetime,
    secret: str | None = None,
    description: str = "",
    expires_in_days: int | None = None,
) -> tuple[str, str]:
    """Issue a token with `role`; returns (token_id, secret). Pass `secret` to register a known one."""
    return issue_token(store, role, now, secret, description, expires_in_days)[0:2]


def issue_token(
    store: TokenStore,
    role: str,
    now: datetime,
    secret: str | None = None,
    description: str = "",
    expires_in_days: int | None = None,
) -> tuple[str, str, TokenRecord]:
    """Issue a token; returns (token_id, secret, the stored record)."""
    parsed = parse_role(role)
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ValidationFailed(
            "token secret too short",
            [{"field": "secret", "message": f"at least {MIN_SECRET_LENGTH} characters"}],
        )
    secret = secret or SECRET_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    # Stored to the second (DynamoDB's TTL is epoch seconds).
    expires = (now + timedelta(days=expires_in_days)).replace(microsecond=0) \
        if expires_in_days else None
    record = TokenRecord(token_id=token_id, role=parsed.value, created_at=now,
                         description=description, expires_at=expires)
    store.put(hash_secret(secret), record)
    return token_id, secret, record


def list_tokens(store: TokenStore) -> list[TokenRecord]:
    """Every token (never its secret), by id."""
    return store.list()


def revoke_token(store: TokenStore, token_id: str) -> None:
    """Revoke a token: its next request gets a 401. TokenNotFound when there is none."""
    if not store.revoke(token_id):
        raise TokenNotFound(token_id)


def record_use(store: TokenStore, record: TokenRecord, now: datetime) -> None:
    """Note that the token was used, at most once per TOUCH_INTERVAL (the write is not free)."""
    last = record.last_used_at
    if last is None or now - last >= TOUCH_INTERVAL:
        store.touch(record.token_id, now)


def bearer_secret(header: str | None) -> str:
    """The secret of an `Authorization: Bearer <secret>` header; Unauthorized when absent."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing bearer token")
    return value.strip()


def authenticate(store: TokenStore, header: str | None,
                 now: datetime | None = None) -> TokenRecord:
    """The token record behind an Authorization header; Unauthorized when missing, unknown,
    revoked or expired (at `now`, default the current time)."""
    record = store.find(hash_secret(bearer_secret(header)))
    if record is None:
        raise Unauthorized("invalid token")
    now = now or datetime.now(timezone.utc)
    if record.expires_at is not None and record.expires_at <= now:
        raise Unauthorized("token expired")
    return record


def require_role(role: Role, required: Role) -> None:
    """Forbidden unless `role` includes everything `required` may do."""
    if not role.allows(required):
        raise Forbidden(
            f"role {role.value} may not do this; needs {required.value}",
            role=role.value, required=required.value,
        )
