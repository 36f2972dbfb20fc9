"""`orchestrator backend check --url s3://bucket/prefix`: is this S3 bucket fit to hold Pulumi state?

A self-managed backend (`pulumi login s3://…`) keeps every stack's state — and so the only record of
what runs in the cluster — as objects in one bucket. The check reads the bucket's settings (it changes
nothing) and reports, with the command that fixes each:

- versioning enabled: an overwritten or deleted checkpoint can be restored;
- default encryption configured: state holds resource inputs, including ciphertext of secrets;
- not public: the bucket-level public access block on (all four settings), no bucket policy that
  makes it public, no ACL grant to AllUsers / AuthenticatedUsers.

Exit codes: 0 all good, 1 something to fix (listed), 2 bad input (URL, no such bucket, credentials that
cannot read it), 5 S3 (or --endpoint-url) unreachable.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from orchestrator.errors import ExitCode, InputError

EXIT_OK, EXIT_FIX, EXIT_INPUT = ExitCode.OK, ExitCode.FAILED, ExitCode.INPUT
PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
BLOCK_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


class BackendError(InputError):
    """The URL is not usable or the bucket cannot be read; nothing was checked."""


class BackendUnreachable(BackendError):
    """S3 (or the --endpoint-url) did not answer."""

    exit_code = ExitCode.UNREACHABLE


# S3 bucket naming rules (general purpose buckets): 3-63 of [a-z0-9.-], letter or digit at both ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9!\-_.*'()=+,@]+$")  # S3's "safe characters" (plus = + , @)


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket[/prefix][?query]` → (bucket, prefix). Query parameters (region, endpoint, …) are
    Pulumi's and are ignored here. Refuses what S3 or Pulumi would read differently than it looks:
    bad bucket names, empty, `.` or `..` segments, spaces and other unsafe characters, fragments."""
    try:
        parsed = urlparse(url)
    except ValueError as exc:  # e.g. an unclosed '[' (IPv6 syntax)
        raise BackendError(f"--url {url!r}: {exc}") from None
    if parsed.scheme != "s3" or not parsed.netloc:
        raise BackendError(f"--url {url!r} is not an S3 backend URL (expected s3://bucket[/prefix])")
    bucket, path = parsed.netloc, parsed.path
    if not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        raise BackendError(f"--url {url!r}: {bucket!r} is not an S3 bucket name "
                           "(3-63 lowercase letters, digits, '.', '-')")
    if parsed.fragment or url.endswith("#"):
        raise BackendError(f"--url {url!r}: a '#' fragment has no meaning in a backend URL")
    prefix = path[1:] if path.startswith("/") else path
    if prefix.endswith("/"):
        prefix = prefix[:-1]
    for segment in prefix.split("/") if prefix else []:
        if segment in ("", ".", "..") or not _KEY_SEGMENT.match(segment):
            raise BackendError(f"--url {url!r}: prefix segment {segment!r} is empty, '.', '..' or has "
                               "characters outside letters, digits and !-_.*'()=+,@")
    return bucket, prefix


def _endpoint(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parsed = urlparse(url)
    except ValueError as exc:
        raise InputError(f"--endpoint-url {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/") \
            or parsed.query or parsed.fragment:
        raise InputError(f"--endpoint-url {url!r}: expected http(s)://host[:port]")
    try:
        parsed.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InputError(f"--endpoint-url {url!r}: bad port") from None
    return url


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _boto_error(exc: Exception) -> BackendError:
    """botocore's own errors: no connection is exit 5, everything else (credentials, parameters) exit 2."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import EndpointConnectionError

    if isinstance(exc, (EndpointConnectionError, BotoConnectionError)):
        return BackendUnreachable(f"cannot reach S3: {exc}")
    return BackendError(f"cannot use S3: {exc}")


def check_bucket(s3: Any, bucket: str) -> list[Finding]:
    """Findings for `bucket` through a boto3 S3 client. Raises BackendError when it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = _error_code(exc)
        if code in ("404", "NoSuchBucket"):
            raise BackendError(f"bucket {bucket!r} does not exist") from None
        if code in ("403", "AccessDenied"):
            raise BackendError(f"access to bucket {bucket!r} denied: the credentials in use cannot read it") from None
        raise BackendError(f"bucket {bucket!r}: {exc}") from None
    except BotoCoreError as exc:
        raise _boto_error(exc) from None

    findings = []
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    findings.append(Finding(status == "Enabled", f"versioning: {status or 'never enabled'}",
                            f"aws s3api put-bucket-versioning --bucket {bucket} "
                            "--versioning-configuration Status=Enabled"))

    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        algos = sorted({r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "?") for r in rules})
        findings.append(Finding(bool(rules), f"default encryption: {', '.join(algos) or 'no rules'}"))
    except ClientError as exc:
        if _error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        findings.append(Finding(False, "default encryption: not configured",
                                f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-"
                                "configuration '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":"
                                "{\"SSEAlgorithm\":\"aws:kms\"}}]}'"))

    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if _error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        block = {}
    off = [k for k in BLOCK_KEYS if not block.get(k)]
    findings.append(Finding(not off, "public access block: " + (f"off: {', '.join(off)}" if off else "all on"),
                            f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-"
                            "configuration " + ",".join(f"{k}=true" for k in BLOCK_KEYS)))

    try:
        public_policy = bool(s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"])
    except ClientError as exc:
        if _error_code(exc) != "NoSuchBucketPolicy":
            raise
        public_policy = False
    findings.append(Finding(not public_policy, "bucket policy: " + ("PUBLIC" if public_policy else "not public"),
                            f"remove the public statements: aws s3api get-bucket-policy --bucket {bucket}"))

    grants = s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
    public_grants = sorted({f"{g['Grantee']['URI'].rsplit('/', 1)[-1]}:{g['Permission']}" for g in grants
                            if g.get("Grantee", {}).get("URI") in PUBLIC_GROUPS})
    findings.append(Finding(not public_grants, "ACL: " + (f"PUBLIC grants {', '.join(public_grants)}"
                                                         if public_grants else "no public grants"),
                            f"aws s3api put-bucket-acl --bucket {bucket} --acl private"))
    return findings


def register(sub: argparse._SubParsersAction) -> None:
    backend = sub.add_parser("backend", help="check the self-managed Pulumi state backend")
    actions = backend.add_subparsers(dest="backend_command", metavar="ACTION", required=True)
    p = actions.add_parser("check", help="verify an S3 state bucket is versioned, encrypted and not public",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, metavar="s3://BUCKET[/PREFIX]", help="the URL given to `pulumi login`")
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (S3-compatible stores)")
    p.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    bucket, prefix = parse_s3_url(args.url)
    endpoint = _endpoint(args.endpoint_url)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=args.region)
        findings = check_bucket(s3, bucket)
    except BotoCoreError as exc:
        raise _boto_error(exc) from None
    except ClientError as exc:
        raise BackendError(f"cannot read the settings of bucket {bucket!r}: {exc}") from None
    print(f"state bucket {bucket}" + (f" (prefix {prefix}/)" if prefix else ""))
    for f in findings:
        print(f"  {'ok ' if f.ok else 'FIX'}  {f.what}")
        if not f.ok and f.fix:
            print(f"         fix: {f.fix}")
    bad = [f for f in findings if not f.ok]
    print(f"{len(bad)} thing(s) to fix" if bad else "the bucket is fit to hold Pulumi state")
    return EXIT_FIX if bad else EXIT_OK
