"""Bearer tokens: issued once, stored hashed, authenticated by header, roles ordered."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.adapters.memory import MemoryTokenStore
from chalicelib.domain.errors import Forbidden, Unauthorized, ValidationFailed
from chalicelib.services.tokens import (
    Role,
    authenticate,
    create_token,
    hash_secret,
    require_role,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


class SpyStore(MemoryTokenStore):
    """Keeps what was written, to check no secret reaches storage."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, object]] = []

    def put(self, token_hash, record):
        self.writes.append((token_hash, record))
        super().put(token_hash, record)


def test_created_token_authenticates_with_its_role():
    store = MemoryTokenStore()
    token_id, secret = create_token(store, "operator", NOW, description="ci")
    record = authenticate(store, f"Bearer {secret}")
    assert (record.token_id, record.role, record.description) == (token_id, "operator", "ci")
    assert record.created_at == NOW


def test_secret_is_stored_only_as_its_sha256():
    store = SpyStore()
    _, secret = create_token(store, "viewer", NOW)
    [(key, record)] = store.writes
    assert key == hash_secret(secret) and len(key) == 64
    assert secret not in repr(record) and secret != key


def test_each_token_gets_a_fresh_secret_and_id():
    store = MemoryTokenStore()
    first, second = create_token(store, "viewer", NOW), create_token(store, "viewer", NOW)
    assert first[0] != second[0] and first[1] != second[1]


def test_a_given_secret_is_registered_as_is():
    store = MemoryTokenStore()
    _, secret = create_token(store, "admin", NOW, secret="local-dev-token")
    assert secret == "local-dev-token"
    assert authenticate(store, "bearer local-dev-token").role == "admin"


def test_a_short_given_secret_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        create_token(MemoryTokenStore(), "admin", NOW, secret="short")
    assert caught.value.details[0]["field"] == "secret"


def test_unknown_role_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValidationFailed) as caught:
        create_token(MemoryTokenStore(), "root", NOW)
    assert caught.value.details[0]["allowed"] == ["viewer", "operator", "admin"]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "token"])
def test_missing_or_malformed_header_is_unauthorized(header):
    with pytest.raises(Unauthorized):
        authenticate(MemoryTokenStore(), header)


def test_unknown_secret_is_unauthorized():
    store = MemoryTokenStore()
    create_token(store, "admin", NOW)
    with pytest.raises(Unauthorized, match="invalid token"):
        authenticate(store, "Bearer rt_not-a-real-token")


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.OPERATOR, False),
        (Role.VIEWER, Role.ADMIN, False),
        (Role.OPERATOR, Role.VIEWER, True),
        (Role.OPERATOR, Role.OPERATOR, True),
        (Role.OPERATOR, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.OPERATOR, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_roles_are_ordered_viewer_operator_admin(role, required, allowed):
    assert role.allows(required) is allowed
    if allowed:
        require_role(role, required)
    else:
        with pytest.raises(Forbidden):
            require_role(role, required)
