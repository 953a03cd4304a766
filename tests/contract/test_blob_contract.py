"""One BlobStore contract, run against the in-memory twin and S3BlobStore on moto."""
from __future__ import annotations

import os

import pytest

from chalicelib.adapters.memory import MemoryBlobStore
from chalicelib.adapters.s3_blobs import S3BlobStore


class BlobContract:
    """What every BlobStore does; subclasses give the store."""

    @pytest.fixture
    def blobs(self):
        raise NotImplementedError

    def test_stored_bytes_are_read_back_unchanged(self, blobs):
        data = bytes(range(256)) + "grüße".encode()
        blobs.put("runs/r1/trigger", data)
        assert blobs.get("runs/r1/trigger") == data

    def test_large_payload_round_trips(self, blobs):
        data = os.urandom(2 * 1024 * 1024)
        blobs.put("runs/r1/steps/0/output", data)
        assert blobs.get("runs/r1/steps/0/output") == data

    def test_put_replaces_the_previous_value(self, blobs):
        blobs.put("runs/r1/trigger", b"first")
        blobs.put("runs/r1/trigger", b"second")
        assert blobs.get("runs/r1/trigger") == b"second"

    def test_keys_are_distinct(self, blobs):
        blobs.put("runs/r1/steps/1/output", b"one")
        blobs.put("runs/r1/steps/10/output", b"ten")
        assert blobs.get("runs/r1/steps/1/output") == b"one"

    def test_empty_payload_is_kept(self, blobs):
        blobs.put("runs/r1/empty", b"")
        assert blobs.get("runs/r1/empty") == b""

    def test_missing_key_raises_key_error(self, blobs):
        with pytest.raises(KeyError):
            blobs.get("runs/none/trigger")


class TestMemoryBlobStore(BlobContract):
    @pytest.fixture
    def blobs(self):
        return MemoryBlobStore()


class TestS3BlobStore(BlobContract):
    @pytest.fixture
    def blobs(self, aws, settings):
        return S3BlobStore(settings)

    def test_objects_are_encrypted_at_rest(self, blobs):
        blobs.put("runs/r1/trigger", b"{}")
        head = blobs.client.head_object(Bucket=blobs.bucket, Key="runs/r1/trigger")
        assert head["ServerSideEncryption"] == "AES256"

    def test_objects_go_to_the_configured_bucket(self, blobs, aws, settings):
        blobs.put("runs/r2/trigger", b"x")
        listed = aws.client("s3").list_objects_v2(Bucket=settings.payload_bucket)
        assert [item["Key"] for item in listed["Contents"]] == ["runs/r2/trigger"]
