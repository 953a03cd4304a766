"""Token routes (admin): issue, list, revoke. Deployed, they run in the TokenAdmin function,
whose role alone may write tokens (infra/package.py routes /api/tokens... there)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from chalice import Response
from pydantic import Field

from ..bootstrap import container
from ..domain.clock import iso
from ..services import tokens as service
from ..services.ports import TokenRecord
from ..services.tokens import Role
from .common import Identity, endpoint
from .models import ApiModel, Out

TOKEN_ID = {"id": "token id"}


class TokenIn(ApiModel):
    """Body of POST /api/tokens."""

    role: Literal["viewer", "operator", "admin"]
    name: str = Field(min_length=1, max_length=100, description="what the token is for")
    expires_in_days: int | None = Field(None, ge=1, le=3650,
                                        description="omitted: the token never expires")


class TokenOut(Out):
    id: str
    name: str
    role: Literal["viewer", "operator", "admin"]
    createdAt: datetime
    lastUsedAt: datetime | None = Field(description="to the minute; null when never used")
    expiresAt: datetime | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="the bearer token: shown this once, stored only as a hash")


class TokenListOut(Out):
    tokens: list[TokenOut]


class RevokedOut(Out):
    id: str
    revoked: Literal[True]


def _shape(record: TokenRecord) -> dict:
    return {"id": record.token_id, "name": record.description, "role": record.role,
            "createdAt": iso(record.created_at), "lastUsedAt": iso(record.last_used_at),
            "expiresAt": iso(record.expires_at)}


@endpoint("/api/tokens", methods=["POST"], status=201, role=Role.ADMIN,
          summary="Issue a token (its secret is in this answer only)", body=TokenIn,
          response=IssuedTokenOut)
def issue(identity: Identity, body: TokenIn) -> Response:
    """POST /api/tokens."""
    box = container()
    token_id, secret, record = service.issue_token(
        box.tokens, body.role, box.clock(), description=body.name,
        expires_in_days=body.expires_in_days)
    return Response({**_shape(record), "token": secret}, status_code=201,
                    headers={"Location": f"/api/tokens/{token_id}", "Cache-Control": "no-store"})


@endpoint("/api/tokens", role=Role.ADMIN, summary="List tokens (never their secrets)",
          response=TokenListOut)
def list_tokens(identity: Identity) -> dict:
    """GET /api/tokens."""
    return {"tokens": [_shape(record) for record in service.list_tokens(container().tokens)]}


@endpoint("/api/tokens/{id}", methods=["DELETE"], role=Role.ADMIN, errors=(404,),
          summary="Revoke a token: its next request is refused (401)", response=RevokedOut,
          path_params=TOKEN_ID)
def revoke(id: str, identity: Identity) -> dict:  # noqa: A002 - Chalice passes the URL name
    """DELETE /api/tokens/{id}."""
    service.revoke_token(container().tokens, id)
    return {"id": id, "revoked": True}
