"""BlobStore on Amazon S3: payloads over the item budget, encrypted at rest."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..settings import Settings
from .aws_client import LazyClient

# SSE-S3, as the bucket's default encryption in infra/resources.yaml (no KMS grants needed).
ENCRYPTION = "AES256"


class S3BlobStore:
    """Blobs as objects of the payload bucket, keyed by the caller (e.g. `runs/<id>/trigger`)."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.bucket = settings.payload_bucket
        self._client = LazyClient("s3", settings, client)

    @property
    def client(self) -> Any:
        """The S3 client."""
        return self._client.get()

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` (replacing any previous object), encrypted at rest."""
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ServerSideEncryption=ENCRYPTION
        )

    def get(self, key: str) -> bytes:
        """The bytes stored under `key`; KeyError when there is none (or it expired)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise KeyError(key) from exc
            raise
        return response["Body"].read()
