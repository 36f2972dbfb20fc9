"""`orchestrator backend check`: the S3 state bucket's settings read through boto3, against moto."""
from __future__ import annotations

import json

import pytest

from orchestrator.cli import main
from orchestrator.toolchain.backend import EXIT_FIX, EXIT_INPUT, EXIT_OK, BackendError, check_bucket, parse_s3_url
from tests.support.s3 import mocked_s3

BUCKET = "orchestrator-state"


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, BUCKET)


def harden(s3) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def check(capsys, url: str = f"s3://{BUCKET}/pulumi") -> tuple[int, str, str]:
    code = main(["backend", "check", "--url", url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_new_bucket_lists_what_to_fix_and_changes_nothing(s3, capsys):
    code, out, _ = check(capsys)
    assert code == EXIT_FIX
    assert "FIX  versioning: never enabled" in out
    assert f"fix: aws s3api put-bucket-versioning --bucket {BUCKET} --versioning-configuration Status=Enabled" in out
    assert "FIX  default encryption: not configured" in out
    assert "FIX  public access block: off: BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy" in out
    assert "3 thing(s) to fix" in out
    assert "Status" not in s3.get_bucket_versioning(Bucket=BUCKET), "the check is read-only"


def test_hardened_bucket_passes(s3, capsys):
    harden(s3)
    code, out, _ = check(capsys)
    assert code == EXIT_OK, out
    assert "ok   versioning: Enabled" in out and "ok   default encryption: aws:kms" in out
    assert "fit to hold Pulumi state" in out


def test_suspended_versioning_and_partial_block_are_flagged(s3):
    harden(s3)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    bad = {f.what for f in check_bucket(s3, BUCKET) if not f.ok}
    assert bad == {"versioning: Suspended", "public access block: off: BlockPublicPolicy"}


def test_public_acl_is_flagged(s3):
    harden(s3)
    s3.delete_public_access_block(Bucket=BUCKET)
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    bad = {f.what for f in check_bucket(s3, BUCKET) if not f.ok}
    assert "ACL: PUBLIC grants AllUsers:READ" in bad


def test_public_policy_is_flagged(s3):
    harden(s3)
    s3.delete_public_access_block(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    findings = {f.what: f.ok for f in check_bucket(s3, BUCKET)}
    assert findings["bucket policy: PUBLIC"] is False


def test_missing_bucket_and_bad_url_are_clear_errors(s3, capsys):
    code, out, err = check(capsys, "s3://no-such-state-bucket")
    assert code == EXIT_INPUT and "bucket 'no-such-state-bucket' does not exist" in err and out == ""
    code, _, err = check(capsys, "https://example.invalid/state")
    assert code == EXIT_INPUT and "is not an S3 backend URL" in err


def test_parse_s3_url():
    assert parse_s3_url("s3://bucket/team/state?region=eu-west-1") == ("bucket", "team/state")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(BackendError):
        parse_s3_url("s3:///prefix")
