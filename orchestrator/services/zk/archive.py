"""Snapshots of ZooKeeper subtrees as S3 objects, with the bucket's lifecycle expiry, and restores.

One snapshot is one gzip'd JSON object `PREFIX/<UTC time>-zk-snapshot.json.gz` holding every node's
path, data (base64), ACL and kind, plus the node count and a digest of the whole tree. Restoring first
checks the object against its own count and digest, then rebuilds the subtrees through the same
reconciliation as `zk copy`; ephemeral nodes are recorded but not restored (their owning sessions are gone).

What a snapshot or restore will never do: restore an object that does not match its own digest or count,
overwrite a non-empty target subtree without --replace, shorten the expiry of snapshots already in the
bucket without --allow-shorter-retention, or accept an S3 URL with `..`, a query string or blanks.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import InputError, OrchestratorError, RefusedError, UnreachableError
from orchestrator.services.zk.tree import Ensemble, Node, Tree, ZkInputError, parent_of, under, validate_paths

FORMAT = "orchestrator-zk-snapshot/1"
SUFFIX = "-zk-snapshot.json.gz"
RULE_PREFIX = "orchestrator-zk-snapshots"
TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# The name's shape, D = a digit: used to tell whether a lifecycle prefix can match future snapshot names.
NAME_TEMPLATE = "DDDDDDDDTDDDDDD.DDDDDDZ" + SUFFIX
NAME = re.compile(r"(\d{8}T\d{6}\.\d{6}Z)" + re.escape(SUFFIX))
KINDS = ("persistent", "ephemeral", "container", "ttl")
# S3's rules for new bucket names (no upper case, no underscores), and the "safe" key characters of the
# S3 documentation: anything else (blanks, ?, #, %, \) is more likely a mistake than a name.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
KEY_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()=+,@-]+")

S3Client = Any  # boto3's client is generated at run time; it has no static type


class LifecycleError(OrchestratorError):
    """The bucket's lifecycle does not expire the snapshots as asked (exit 1, nothing was written)."""


# -- S3 URLs -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # a prefix for snapshots, an object key or prefix for restores; never empty

    @classmethod
    def parse(cls, url: str, option: str = "--s3") -> S3Location:
        """`s3://BUCKET/KEY` with a valid bucket name and a plain key, or InputError naming `option`."""
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise InputError(f"{option} {url!r}: expected s3://BUCKET/PREFIX")
        bucket, _, key = url[5:].partition("/")
        if not BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
            raise InputError(f"{option} {url!r}: {bucket!r} is not a valid S3 bucket name "
                             "(3-63 lower-case letters, digits, dots and hyphens)")
        key = key.removesuffix("/")
        if not key:
            raise InputError(f"{option} {url!r}: give a key prefix after the bucket (s3://{bucket}/PREFIX); "
                             "snapshots never go to the top of a bucket")
        for segment in key.split("/"):
            if segment in ("", ".", ".."):
                raise InputError(f"{option} {url!r}: empty, '.' and '..' parts are not allowed in the key")
            if not KEY_SEGMENT.fullmatch(segment):
                raise InputError(f"{option} {url!r}: the key may only hold letters, digits, '/' and "
                                 "!_.*'()=+,@- (no blanks, query strings or fragments)")
        return cls(bucket, key)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def object_key(self, when: datetime) -> str:
        return f"{self.key}/{snapshot_name(when)}"


def snapshot_name(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT) + SUFFIX


def snapshot_time(name: str) -> datetime | None:
    """The time in a snapshot object's own name (its last key segment), or None if it is not one."""
    match = NAME.fullmatch(name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13
        return None


# -- serialisation -----------------------------------------------------------------------------------------

def encode(tree: Tree, roots: list[str], source: str, when: datetime) -> bytes:
    from orchestrator.services.zk.verify import tree_digest
    nodes = [{"path": p, "data": base64.b64encode(n.data).decode(), "acl": [list(a) for a in n.acl],
              "kind": n.kind} for p, n in sorted(tree.items())]
    doc = {"format": FORMAT, "created": when.isoformat(), "source": source, "roots": roots,
           "znodes": len(nodes), "digest": tree_digest(tree), "nodes": nodes}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=6)


def _acl(raw: object) -> tuple[tuple[str, str, int], ...]:
    if not isinstance(raw, list):
        raise ValueError("acl is not a list")
    out = []
    for entry in raw:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and type(entry[2]) is int):
            raise ValueError(f"acl entry {entry!r} is not [scheme, id, perms]")
        out.append((entry[0], entry[1], entry[2]))
    return tuple(out)


def decode(blob: bytes, where: str = "the object") -> tuple[dict, Tree]:
    """The snapshot's header and tree, or InputError naming `where` for anything that is not a snapshot."""
    def bad(detail: str) -> InputError:
        return InputError(f"{where}: not a snapshot object ({detail}); nothing was changed")

    try:
        doc = json.loads(gzip.decompress(blob))
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise bad(f"gzip'd JSON expected: {exc}") from None
    if not isinstance(doc, dict):
        raise bad(f"a JSON object expected, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise bad(f"unknown format {str(doc.get('format'))[:40]!r}, expected {FORMAT}")
    roots, nodes = doc.get("roots"), doc.get("nodes")
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise bad("'roots' is not a list of paths")
    try:
        validate_paths(roots)
    except ZkInputError as exc:
        raise bad(f"roots: {exc}") from None
    if not isinstance(nodes, list):
        raise bad("'nodes' is missing or not a list")
    if type(doc.get("znodes")) is not int or not isinstance(doc.get("digest"), str):
        raise bad("'znodes' or 'digest' is missing")
    tree: Tree = {}
    for i, item in enumerate(nodes):
        try:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise ValueError("no path")
            path = item["path"]
            if not any(under(path, r) for r in roots):
                raise ValueError(f"{path!r} is outside the snapshot's roots")
            if path in tree:
                raise ValueError(f"{path!r} appears twice")
            if item.get("kind") not in KINDS:
                raise ValueError(f"unknown kind {str(item.get('kind'))[:20]!r}")
            raw = item.get("data")
            if not isinstance(raw, str):
                raise TypeError("data is missing")
            data = base64.b64decode(raw, validate=True)
            tree[path] = Node(data, _acl(item.get("acl")), item["kind"])
        except (binascii.Error, TypeError) as exc:
            raise bad(f"node {i}: data is not base64 ({exc})") from None
        except ValueError as exc:
            raise bad(f"node {i}: {exc}") from None
    for p in sorted(tree):
        parent = tree.get(parent_of(p))
        if parent is not None and p != "/":
            parent.children.append(p.rsplit("/", 1)[1])
    return doc, tree


def check_integrity(doc: dict, tree: Tree, where: str) -> str:
    """RefusedError unless the tree matches the snapshot's own node count and digest. Returns the digest."""
    from orchestrator.services.zk.verify import tree_digest
    if doc["znodes"] != len(tree):
        raise RefusedError(f"{where} records {doc['znodes']} znodes but holds {len(tree)} znodes: it was cut short "
                           "or altered; refusing to restore it (nothing was changed)")
    digest = tree_digest(tree)
    if digest != doc["digest"]:
        raise RefusedError(f"{where} does not match its own digest (recorded {doc['digest'][:16]}…, computed "
                           f"{digest[:16]}…): it was altered or damaged; refusing to restore it "
                           "(nothing was changed)")
    return digest


# -- bucket lifecycle --------------------------------------------------------------------------------------

def expiry_days(hours: int, option: str = "--retention-hours") -> int:
    if type(hours) is not int or hours <= 0 or hours % 24:
        raise InputError(f"{option} {hours!r}: S3 expiry counts whole days, use a positive multiple of 24")
    return hours // 24


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _could_be_name(rest: str) -> bool:
    """Whether `rest` is the beginning of some snapshot object name (a rule prefix that reaches into it)."""
    if len(rest) > len(NAME_TEMPLATE):
        return False
    return all(c.isdigit() if t == "D" else c == t for c, t in zip(rest, NAME_TEMPLATE, strict=False))


@dataclass(frozen=True)
class RuleMatch:
    """An enabled rule that expires (some of) the snapshot objects under a prefix."""

    rule_id: str
    scope: str
    days: int | None
    date: str | None

    def text(self) -> str:
        when = f"after {_days(self.days)}" if self.days is not None else f"on {self.date}"
        return f"rule {self.rule_id!r} ({self.scope}) expires them {when}"


def _rule_scope(rule: dict) -> tuple[str, bool, bool]:
    """(prefix, has tag conditions, has size conditions) of a rule, whatever its filter's spelling."""
    if "Filter" not in rule:  # the older top-level Prefix form
        return str(rule.get("Prefix") or ""), False, False
    flt = rule.get("Filter") or {}
    if "And" in flt:
        flt = flt["And"] or {}
        tags = bool(flt.get("Tags"))
    else:
        tags = "Tag" in flt
    sized = "ObjectSizeGreaterThan" in flt or "ObjectSizeLessThan" in flt
    return str(flt.get("Prefix") or ""), tags, sized


def matching_rules(rules: list[dict], prefix: str) -> list[RuleMatch]:
    """Every enabled rule that can expire a snapshot written under `prefix` ("KEY/").

    S3 applies the shortest expiry of all rules that match an object. A rule matches a snapshot when its
    prefix covers `prefix` (an empty filter is the whole bucket) or reaches into the snapshot names
    ("prod/2026"). Size conditions count: a snapshot can have any size. Tag conditions do not: snapshot
    objects carry no tags.
    """
    out = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        expiration = rule.get("Expiration") or {}
        days, date = expiration.get("Days"), expiration.get("Date")
        if days is None and date is None:
            continue  # transitions or delete-marker clean-up only: the snapshot object stays
        rp, tags, sized = _rule_scope(rule)
        if tags:
            continue
        if not (prefix.startswith(rp) or (rp.startswith(prefix) and _could_be_name(rp[len(prefix):]))):
            continue
        scope = f"prefix {rp!r}" if rp else "whole bucket"
        if sized:
            scope += ", by object size"
        out.append(RuleMatch(str(rule.get("ID", "?")), scope, int(days) if days is not None else None,
                             str(date) if date is not None else None))
    return out


def effective_days(rules: list[dict], prefix: str) -> int | None:
    """The shortest expiry (days) that applies to snapshots under `prefix`, None if nothing expires them."""
    days = [m.days for m in matching_rules(rules, prefix) if m.days is not None]
    return min(days) if days else None


def _summary(matches: list[RuleMatch]) -> str:
    return "; ".join(m.text() for m in sorted(matches, key=lambda m: (m.days is None, m.days or 0, m.rule_id)))


def ensure_lifecycle(s3: S3Client, bucket: str, key_prefix: str, days: int, check_only: bool = False,
                     allow_shorter: bool = False) -> str:
    """Set (or, with check_only, only check) the expiry of the snapshots under `key_prefix`.

    Returns what was done. LifecycleError (exit 1) when the bucket would expire the snapshots otherwise
    than asked and that is not ours to change; RefusedError (exit 6) when the change would shorten the
    expiry of what is already under the prefix and `allow_shorter` is not set. Nothing is written then.
    """
    from botocore.exceptions import ClientError
    prefix = f"{key_prefix}/"
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    rule_id = f"{RULE_PREFIX}:{prefix}"[:255]
    matches = matching_rules(rules, prefix)
    dated = [m for m in matches if m.days is None]
    if dated:
        raise LifecycleError(f"bucket {bucket}: {dated[0].text()} for everything under {prefix}, whatever its "
                             "age; remove that rule first (nothing was written)")
    current = effective_days(rules, prefix)
    where = f"bucket {bucket}: snapshots under {prefix}"
    if current == days:
        return f"{where} already expire after {_days(days)} (effective: {_summary(matches)})"
    foreign_shorter = [m for m in matches if m.rule_id != rule_id and m.days is not None and m.days < days]
    if foreign_shorter:
        raise LifecycleError(f"{where} would expire after {_days(current or days)}, not {_days(days)} "
                             f"(effective: {_summary(matches)}); change or remove "
                             f"{', '.join(repr(m.rule_id) for m in foreign_shorter)} first (nothing was written)")
    if check_only:
        now = f"expire after {_days(current)}" if current is not None else "never expire"
        effective = f" (effective: {_summary(matches)})" if matches else ": no enabled lifecycle rule matches"
        raise LifecycleError(f"{where} {now}, not after {_days(days)}{effective} (nothing was written)")
    if current is not None and days < current and not allow_shorter:
        raise RefusedError(f"{where} now expire after {_days(current)} ({_summary(matches)}); a "
                           f"{_days(days)} expiry would delete the snapshots already there sooner: pass "
                           "--allow-shorter-retention if that is intended (nothing was written)")
    others = [r for r in rules if r.get("ID") != rule_id]
    ours = {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, "Expiration": {"Days": days}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": others + [ours]})
    was = f" (was {_days(current)})" if current is not None else ""
    return f"{where} expire after {_days(days)}{was}: bucket lifecycle rule {rule_id!r} set"


# -- S3 errors ---------------------------------------------------------------------------------------------

@contextmanager
def s3_errors(loc: S3Location) -> Iterator[None]:
    """botocore's errors as the project's: a missing bucket or key is bad input, a dead endpoint unreachable."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "NoSuchKey", "404"):
            raise InputError(f"{loc.url}: {code} (nothing was changed)") from None
        raise OrchestratorError(f"{loc.url}: S3 refused: {exc}") from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        raise UnreachableError(f"{loc.url}: S3 did not answer: {exc}") from None
    except NoCredentialsError:
        raise InputError(f"{loc.url}: no AWS credentials (environment, profile or instance role)") from None
    except BotoCoreError as exc:
        raise OrchestratorError(f"{loc.url}: S3: {exc}") from None


def s3_client(endpoint_url: str | None) -> S3Client:
    import boto3
    return boto3.client("s3", endpoint_url=endpoint_url)


# -- commands ----------------------------------------------------------------------------------------------

def snapshot(source: Ensemble, roots: list[str], s3: S3Client, loc: S3Location, days: int,
             check_only: bool = False, allow_shorter: bool = False) -> dict:
    """Read the subtrees, make sure the bucket expires them as asked, write one object. A root that does
    not exist on the source is an error: an archive of nothing must not pass for an archive."""
    tree = source.read(roots)
    missing = [r for r in roots if r not in tree]
    if missing:
        raise InputError(f"{', '.join(missing)} does not exist on the source {source.hosts!r}: nothing to "
                         "archive (nothing was written)")
    with s3_errors(loc):
        lifecycle = ensure_lifecycle(s3, loc.bucket, loc.key, days, check_only, allow_shorter)
        when = datetime.now(UTC)
        body = encode(tree, roots, source.hosts, when)
        key = loc.object_key(when)
        s3.put_object(Bucket=loc.bucket, Key=key, Body=body, ContentType="application/json",
                      ContentEncoding="gzip")
    return {"key": key, "znodes": len(tree), "bytes": len(body), "lifecycle": lifecycle,
            "ephemeral": sum(1 for n in tree.values() if n.kind == "ephemeral")}


def newest_snapshot_key(s3: S3Client, loc: S3Location) -> str:
    """`loc.key` itself if it names a snapshot object, else the newest snapshot directly under it.

    "Newest" is the time in the object's own name (the time the snapshot was read), not LastModified
    (a copy or re-upload changes that); objects in sub-folders are other archives and never chosen.
    """
    if loc.key.endswith(SUFFIX):
        return loc.key
    prefix = f"{loc.key}/"
    found: list[tuple[datetime, str]] = []
    with s3_errors(loc):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                when = snapshot_time(obj["Key"][len(prefix):])
                if when is not None:
                    found.append((when, obj["Key"]))
    if not found:
        raise InputError(f"no snapshot directly under s3://{loc.bucket}/{prefix} (objects in sub-folders "
                         "are not considered: name one with its full key)")
    return max(found)[1]


def load_snapshot(s3: S3Client, loc: S3Location) -> tuple[str, dict, Tree, str]:
    """(key, header, tree, digest) of the snapshot `loc` names, verified against its own count and digest."""
    key = newest_snapshot_key(s3, loc)
    with s3_errors(loc):
        blob = s3.get_object(Bucket=loc.bucket, Key=key)["Body"].read()
    where = f"s3://{loc.bucket}/{key}"
    doc, tree = decode(blob, where)
    return key, doc, tree, check_integrity(doc, tree, where)


def select(doc: dict, tree: Tree, paths: list[str] | None) -> tuple[list[str], Tree]:
    """The roots to restore (all of the snapshot's, or `paths` inside them) and their nodes."""
    roots: list[str] = doc["roots"]
    if paths:
        for p in paths:
            if not any(under(p, r) for r in roots):
                raise InputError(f"--path {p} is not in the snapshot (it holds {', '.join(roots)})")
            if p not in tree:
                raise InputError(f"--path {p}: the snapshot holds no znode there (nothing was changed)")
        roots = paths
    empty = [r for r in roots if r not in tree]
    if empty:
        # Older versions archived a missing path as 0 znodes: "restoring" it could only delete.
        raise RefusedError(f"the snapshot holds no znode under {', '.join(empty)} (the path was missing when it "
                           "was taken): refusing to restore it (nothing was changed)")
    return roots, {p: n for p, n in tree.items() if any(under(p, r) for r in roots)}


def restore(target: Ensemble, key: str, tree: Tree, roots: list[str], replace: bool,
            dry_run: bool = False) -> dict:
    """Make the target's `roots` equal to the (verified) snapshot tree."""
    from orchestrator.services.zk.tree import plan_reconcile, reconcile
    from orchestrator.services.zk.verify import compare, tree_digest
    existing = target.read(roots)
    if existing and not replace:
        raise RefusedError(f"the target already holds {len(existing)} znodes under {', '.join(roots)}; "
                           "pass --replace to overwrite them (nothing was changed)")
    persistent = {p: n for p, n in tree.items() if n.kind != "ephemeral"}
    out: dict = {"key": key, "znodes": len(persistent), "skipped_ephemeral": len(tree) - len(persistent)}
    if dry_run:
        out["plan"] = plan_reconcile(tree, existing, roots, ephemeral="skip", my_session=target.session_id)
        return out
    _, result = reconcile(tree, target, roots, ephemeral="skip")
    after = {p: n for p, n in target.read(roots).items() if n.kind != "ephemeral"}
    out.update(errors=result.errors, differences=compare(persistent, after), digest=tree_digest(after))
    return out


def _plan_counts(plan: Any) -> str:
    creates = sum(1 for op in plan.upserts if op.kind == "create")
    return (f"{creates} creates, {len(plan.upserts) - creates} sets, {len(plan.deletes)} deletes, "
            f"{len(plan.acls)} acls")


def cli_snapshot(args: Any) -> int:
    from orchestrator.services.zk.session import auth_from, close_client, open_client
    loc = S3Location.parse(args.s3)
    days = expiry_days(args.retention_hours)
    try:
        paths = validate_paths(args.paths)
    except ZkInputError as exc:
        raise InputError(str(exc)) from None
    from orchestrator.services.zk.tls import ZkTls
    source = open_client(args.source, auth_from(args.auth), timeout=args.connect_timeout,
                         session_timeout=args.session_timeout, label="--source",
                         tls=ZkTls.of(args.source_tls, "--source-tls"))
    try:
        out = snapshot(source, paths, s3_client(args.endpoint_url), loc, days, args.check_lifecycle_only,
                       getattr(args, "allow_shorter_retention", False))
    finally:
        close_client(source)
    print(out["lifecycle"])
    print(f"wrote s3://{loc.bucket}/{out['key']}: {out['znodes']} znodes under {', '.join(paths)}, "
          f"{out['bytes']} bytes")
    if out["ephemeral"]:
        print(f"{out['ephemeral']} ephemeral znodes recorded (a restore does not re-create them)")
    return 0


def cli_restore(args: Any) -> int:
    from orchestrator.services.zk.session import auth_from, close_client, open_client
    loc = S3Location.parse(args.s3)
    try:
        paths = validate_paths(args.paths) if args.paths else None
    except ZkInputError as exc:
        raise InputError(str(exc)) from None
    from orchestrator.services.zk.tls import ZkTls
    auth = auth_from(args.auth)
    tls = ZkTls.of(args.target_tls, "--target-tls")
    # Everything about the snapshot is checked before a session to the target is even opened.
    key, doc, tree, digest = load_snapshot(s3_client(args.endpoint_url), loc)
    roots, tree = select(doc, tree, paths)
    dry_run = getattr(args, "dry_run", False)
    print(f"snapshot s3://{loc.bucket}/{key} verified: {doc['znodes']} znodes, digest {digest[:16]}…, "
          f"taken {doc.get('created', '?')}")
    target = open_client(args.target, auth, timeout=args.connect_timeout, session_timeout=args.session_timeout,
                         label="--target", tls=tls)
    try:
        out = restore(target, key, tree, roots, args.replace, dry_run)
    finally:
        close_client(target)
    if dry_run:
        print(f"dry run: restoring {', '.join(roots)} onto {args.target} would make {_plan_counts(out['plan'])}; "
              "nothing was changed")
        for op in out["plan"].deletes[:10]:
            print(f"  would delete {op.path}")
        return 0
    print(f"restored {out['znodes']} znodes from s3://{loc.bucket}/{key}, target digest {out['digest']}")
    if out["skipped_ephemeral"]:
        print(f"{out['skipped_ephemeral']} ephemeral znodes in the snapshot were not re-created")
    for op, error in out["errors"]:
        print(f"failed: {op.kind} {op.path}: {error!r}", file=sys.stderr)
    for d in out["differences"]:
        print(f"after restore: {d}", file=sys.stderr)
    return 1 if out["errors"] or out["differences"] else 0
