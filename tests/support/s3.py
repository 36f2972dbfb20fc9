"""A moto S3 (in-process, no network) with dummy credentials, shared by the S3 tests."""
from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws


def mocked_s3(monkeypatch: pytest.MonkeyPatch, bucket: str) -> Iterator:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield client
