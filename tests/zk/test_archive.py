"""S3 snapshots and restores (`orchestrator zk snapshot|restore`) against moto's S3 and real ensembles."""
from __future__ import annotations

import gzip
import json

import pytest

from orchestrator.cli import main
from orchestrator.services.zk.verify import verify
from tests.support.s3 import mocked_s3
from tests.zk.helpers import AUTH, ORCH_ACL, bulk_create, wide_tree

BUCKET = "zk-archive"


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, BUCKET)


def snapshot(zk, *extra: str) -> int:
    return main(["zk", "snapshot", "--source", zk.a.connect_string, "--auth", AUTH, "--path", zk.root,
                 "--s3", f"s3://{BUCKET}/ensemble-a", *extra])


def restore(zk, *extra: str) -> int:
    return main(["zk", "restore", "--target", zk.b.connect_string, "--auth", AUTH,
                 "--s3", f"s3://{BUCKET}/ensemble-a", *extra])


def keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_snapshot_sets_expiry_and_restore_rebuilds_the_tree(zk, s3, capsys):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 4, 25))
    zk.ca.create(f"{r}/secret", bytes(range(256)), acl=ORCH_ACL)
    owner = zk.client("a")
    owner.create(f"{r}/leader", b"live", ephemeral=True)

    assert snapshot(zk) == 0
    out = capsys.readouterr().out
    assert "expire after 3 days" in out and "1 ephemeral znodes recorded" in out
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [(r_["Filter"]["Prefix"], r_["Expiration"]["Days"], r_["Status"]) for r_ in rules] == \
        [("ensemble-a/", 3, "Enabled")]
    [key] = keys(s3)
    assert key.startswith("ensemble-a/") and key.endswith("-zk-snapshot.json.gz")
    doc = json.loads(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    assert doc["roots"] == [r] and doc["znodes"] == 1 + 4 + 100 + 2

    assert restore(zk) == 0
    assert "1 ephemeral znodes in the snapshot were not re-created" in capsys.readouterr().out
    report = verify(zk.A, zk.B, [r], ignore_ephemeral=True)
    assert report.identical and report.target_count == 106
    assert zk.cb.exists(f"{r}/leader") is None
    assert zk.cb.get_acls(f"{r}/secret")[0] == ORCH_ACL

    # A second snapshot keeps the compliant rule as it is.
    assert snapshot(zk) == 0
    assert "ensemble-a/ already expire after 3 days" in capsys.readouterr().out
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]) == 1


def test_restore_refuses_to_overwrite_unless_told_and_uses_the_newest_snapshot(zk, s3, capsys):
    r = zk.root
    bulk_create(zk.ca, [(r, b"v1"), (f"{r}/old", b"o")])
    assert snapshot(zk) == 0
    zk.ca.set(r, b"v2")
    zk.ca.delete(f"{r}/old")
    zk.ca.create(f"{r}/new", b"n")
    assert snapshot(zk) == 0
    assert len(keys(s3)) == 2
    bulk_create(zk.cb, [(r, b"on B"), (f"{r}/local", b"l")])
    capsys.readouterr()

    assert restore(zk) == 6  # refused by a safety guard
    assert "already holds 2 znodes" in capsys.readouterr().err
    assert sorted(zk.cb.get_children(r)) == ["local"] and zk.cb.get(r)[0] == b"on B"

    assert restore(zk, "--replace") == 0
    assert verify(zk.A, zk.B, [r]).identical  # newest snapshot: v2 with /new, no /old, no /local

    first = min(keys(s3))
    assert main(["zk", "restore", "--target", zk.b.connect_string, "--s3", f"s3://{BUCKET}/{first}",
                 "--replace"]) == 0
    assert zk.cb.get(r)[0] == b"v1" and zk.cb.get_children(r) == ["old"]


def test_lifecycle_check_only_and_conflicting_rules(zk, s3, capsys):
    bulk_create(zk.ca, [(zk.root, b"x")])
    assert snapshot(zk, "--check-lifecycle-only") == 1
    assert "no enabled lifecycle rule" in capsys.readouterr().err
    assert keys(s3) == []

    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
        {"ID": "everything-30d", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]})
    assert snapshot(zk) == 6  # our 3-day rule would shorten what the bucket keeps under the prefix now
    assert "'everything-30d' (whole bucket) expires them after 30 days" in capsys.readouterr().err
    assert keys(s3) == []

    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
        {"ID": "archive-3d", "Status": "Enabled", "Filter": {"Prefix": "ensemble"}, "Expiration": {"Days": 3}}]})
    assert snapshot(zk, "--check-lifecycle-only") == 0
    assert len(keys(s3)) == 1


@pytest.mark.parametrize("args, message", [
    (["--retention-hours", "50"], "multiple of 24"),
    (["--s3", "bucket-without-scheme"], "expected s3://"),
])
def test_snapshot_bad_input(zk, s3, capsys, args, message):
    bulk_create(zk.ca, [(zk.root, b"x")])
    argv = ["zk", "snapshot", "--source", zk.a.connect_string, "--path", zk.root,
            "--s3", f"s3://{BUCKET}/p", *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert keys(s3) == []


def test_restore_rejects_objects_that_are_not_snapshots(zk, s3, capsys):
    s3.put_object(Bucket=BUCKET, Key="junk/x-zk-snapshot.json.gz", Body=b"not gzip")
    assert main(["zk", "restore", "--target", zk.b.connect_string, "--s3",
                 f"s3://{BUCKET}/junk/x-zk-snapshot.json.gz"]) == 2
    assert "not a snapshot object" in capsys.readouterr().err
    assert main(["zk", "restore", "--target", zk.b.connect_string, "--s3", f"s3://{BUCKET}/nothing-here"]) == 2
    assert "no snapshot directly under" in capsys.readouterr().err
