"""Real ZooKeeper ensembles (shared with tests/zk), fake Mesos masters and Marathon, moto S3."""
from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.migration.fakes import FakeMarathon, MesosCluster
from tests.zk.conftest import ensembles, zk  # noqa: F401  (fixtures)


@pytest.fixture
def mesos():
    cluster = MesosCluster()
    cluster.frameworks.append({"id": "20150101-000000-16777343-5050-1234-0000", "name": "marathon", "active": True,
                               "tasks": []})
    yield cluster
    for m in cluster.masters:
        m.stop()


@pytest.fixture
def marathon():
    m = FakeMarathon()
    yield m
    m.stop()


@pytest.fixture
def s3(monkeypatch):
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(var, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="zk-archive")
        yield client
