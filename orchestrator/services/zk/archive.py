"""Snapshots of ZooKeeper subtrees as S3 objects, with the bucket's lifecycle expiry, and restores.

One snapshot is one gzip'd JSON object `PREFIX/<UTC time>-zk-snapshot.json.gz` holding every node's
path, data (base64), ACL and kind. Restoring rebuilds the subtrees through the same reconciliation as
`zk copy`; ephemeral nodes are recorded but not restored (their owning sessions are gone).
"""
from __future__ import annotations

import base64
import gzip
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.services.zk.tree import Node, Tree, ZkInputError, parent_of, under, validate_paths

FORMAT = "orchestrator-zk-snapshot/1"
SUFFIX = "-zk-snapshot.json.gz"
RULE_PREFIX = "orchestrator-zk-snapshots"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # a prefix for snapshots, an object key or prefix for restores

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ZkInputError(f"--s3 {url!r}: expected s3://BUCKET/PREFIX")
        bucket, _, key = url[5:].partition("/")
        if not bucket:
            raise ZkInputError(f"--s3 {url!r}: no bucket name")
        return cls(bucket, key.strip("/"))

    def object_key(self, when: datetime) -> str:
        name = when.strftime("%Y%m%dT%H%M%S.%fZ") + SUFFIX
        return f"{self.key}/{name}" if self.key else name


# -- serialisation -------------------------------------------------------------------------------------

def encode(tree: Tree, roots: list[str], source: str, when: datetime) -> bytes:
    from orchestrator.services.zk.verify import tree_digest
    nodes = [{"path": p, "data": base64.b64encode(n.data).decode(), "acl": [list(a) for a in n.acl],
              "kind": n.kind} for p, n in sorted(tree.items())]
    doc = {"format": FORMAT, "created": when.isoformat(), "source": source, "roots": roots,
           "znodes": len(nodes), "digest": tree_digest(tree), "nodes": nodes}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=6)


def decode(blob: bytes) -> tuple[dict, Tree]:
    try:
        doc = json.loads(gzip.decompress(blob))
    except (OSError, ValueError) as exc:
        raise ZkInputError(f"not a snapshot object (gzip'd JSON expected): {exc}") from None
    if doc.get("format") != FORMAT:
        raise ZkInputError(f"unknown snapshot format {doc.get('format')!r} (expected {FORMAT})")
    tree: Tree = {}
    for item in doc["nodes"]:
        tree[item["path"]] = Node(base64.b64decode(item["data"]), tuple(tuple(a) for a in item["acl"]),
                                  item["kind"])
    for p in sorted(tree):
        parent = tree.get(parent_of(p))
        if parent is not None and p != "/":
            parent.children.append(p.rsplit("/", 1)[1])
    return doc, tree


# -- bucket lifecycle ----------------------------------------------------------------------------------

def expiry_days(hours: int) -> int:
    if hours <= 0 or hours % 24:
        raise ZkInputError(f"--retention-hours {hours}: S3 expiry counts whole days, use a positive multiple of 24")
    return hours // 24


def _rule_prefix(rule: dict) -> str | None:
    flt = rule.get("Filter")
    if flt is None:
        return rule.get("Prefix")
    if "Prefix" in flt:
        return flt["Prefix"]
    if "And" in flt and not flt["And"].get("Tags"):
        return flt["And"].get("Prefix", "")
    return None  # tag filters do not cover untagged snapshot objects


def lifecycle_problem(rules: list[dict], prefix: str, days: int) -> str | None:
    """None if some enabled rule expires every object under `prefix` after exactly `days`."""
    for rule in rules:
        rp = _rule_prefix(rule)
        if rule.get("Status") == "Enabled" and rp is not None and prefix.startswith(rp):
            got = rule.get("Expiration", {}).get("Days")
            if got == days:
                return None
            return f"rule {rule.get('ID', '?')!r} expires {rp or '(whole bucket)'} after {got} days, not {days}"
    return f"no enabled lifecycle rule expires objects under {prefix or '(whole bucket)'}"


def ensure_lifecycle(s3, bucket: str, key_prefix: str, days: int, check_only: bool) -> str:
    """Set (or, with check_only, only check) the expiry of the snapshots. Returns what was done."""
    from botocore.exceptions import ClientError
    prefix = f"{key_prefix}/" if key_prefix else ""
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    problem = lifecycle_problem(rules, prefix, days)
    if problem is None:
        return f"bucket lifecycle already expires {prefix or '(whole bucket)'} after {days} days"
    if check_only:
        raise LifecycleError(problem)
    rule_id = f"{RULE_PREFIX}:{prefix}"[:255]
    others = [r for r in rules if r.get("ID") != rule_id]
    # A broader rule with another expiry would still win for our objects: refuse rather than fight it.
    broader = lifecycle_problem(others, prefix, days)
    if broader and not broader.startswith("no enabled"):
        raise LifecycleError(broader + "; change or remove it first")
    ours = {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, "Expiration": {"Days": days}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": others + [ours]})
    return f"bucket lifecycle set: objects under {prefix or '(whole bucket)'} expire after {days} days"


class LifecycleError(RuntimeError):
    pass


# -- commands ------------------------------------------------------------------------------------------

def snapshot(source, roots: list[str], s3, loc: S3Location, days: int, check_only: bool = False) -> dict:
    lifecycle = ensure_lifecycle(s3, loc.bucket, loc.key, days, check_only)
    tree = source.read(roots)
    when = datetime.now(UTC)
    body = encode(tree, roots, source.hosts, when)
    key = loc.object_key(when)
    s3.put_object(Bucket=loc.bucket, Key=key, Body=body, ContentType="application/json",
                  ContentEncoding="gzip")
    return {"key": key, "znodes": len(tree), "bytes": len(body), "lifecycle": lifecycle,
            "ephemeral": sum(1 for n in tree.values() if n.kind == "ephemeral")}


def newest_snapshot_key(s3, loc: S3Location) -> str:
    """`loc.key` itself if it names a snapshot object, else the newest snapshot under it as a prefix."""
    if loc.key.endswith(SUFFIX):
        return loc.key
    prefix = f"{loc.key}/" if loc.key else ""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(SUFFIX)]
    if not keys:
        raise ZkInputError(f"no snapshot under s3://{loc.bucket}/{prefix}")
    return max(keys)  # names start with the UTC time


def restore(target, s3, loc: S3Location, paths: list[str] | None, replace: bool) -> dict:
    from orchestrator.services.zk.tree import reconcile
    from orchestrator.services.zk.verify import compare, tree_digest
    key = newest_snapshot_key(s3, loc)
    doc, tree = decode(s3.get_object(Bucket=loc.bucket, Key=key)["Body"].read())
    roots = doc["roots"]
    if paths:
        for p in paths:
            if not any(under(p, r) for r in roots):
                raise ZkInputError(f"--path {p} is not in the snapshot (it holds {', '.join(roots)})")
        roots = paths
    tree = {p: n for p, n in tree.items() if any(under(p, r) for r in roots)}
    existing = target.read(roots)
    if existing and not replace:
        raise ZkInputError(f"the target already holds {len(existing)} znodes under {', '.join(roots)}; "
                           "pass --replace to overwrite them")
    _, result = reconcile(tree, target, roots, ephemeral="skip")
    persistent = {p: n for p, n in tree.items() if n.kind != "ephemeral"}
    after = {p: n for p, n in target.read(roots).items() if n.kind != "ephemeral"}
    return {"key": key, "znodes": len(persistent), "skipped_ephemeral": len(tree) - len(persistent),
            "errors": result.errors, "differences": compare(persistent, after),
            "digest": tree_digest(after)}


def _s3_client(endpoint_url: str | None):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint_url)


def cli_snapshot(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.services.zk.cli import EXIT_FAILED, EXIT_INPUT, EXIT_OK, EXIT_UNREACHABLE, _close, _fail, _open
    try:
        loc = S3Location.parse(args.s3)
        days = expiry_days(args.retention_hours)
    except ZkInputError as exc:
        return _fail(EXIT_INPUT, str(exc))
    code, paths, sides = _open(args, "source")
    if code is not None:
        return code
    try:
        out = snapshot(sides[0], paths, _s3_client(args.endpoint_url), loc, days, args.check_lifecycle_only)
    except LifecycleError as exc:
        return _fail(EXIT_FAILED, f"bucket {loc.bucket}: {exc} (nothing was written)")
    except (ClientError, BotoCoreError) as exc:
        return _fail(EXIT_UNREACHABLE, f"S3: {exc}")
    finally:
        _close(sides)
    print(out["lifecycle"])
    print(f"wrote s3://{loc.bucket}/{out['key']}: {out['znodes']} znodes under {', '.join(paths)}, "
          f"{out['bytes']} bytes")
    if out["ephemeral"]:
        print(f"{out['ephemeral']} ephemeral znodes recorded (a restore does not re-create them)")
    return EXIT_OK


def cli_restore(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.services.zk.cli import EXIT_FAILED, EXIT_INPUT, EXIT_OK, EXIT_UNREACHABLE, _close, _fail, _open
    try:
        loc = S3Location.parse(args.s3)
        if args.paths:
            validate_paths(args.paths)
    except ZkInputError as exc:
        return _fail(EXIT_INPUT, str(exc))
    code, _, sides = _open(args, "target")
    if code is not None:
        return code
    try:
        out = restore(sides[0], _s3_client(args.endpoint_url), loc, args.paths, args.replace)
    except ZkInputError as exc:
        return _fail(EXIT_INPUT, f"{exc} (nothing was changed)")
    except (ClientError, BotoCoreError) as exc:
        return _fail(EXIT_UNREACHABLE, f"S3: {exc}")
    finally:
        _close(sides)
    print(f"restored {out['znodes']} znodes from s3://{loc.bucket}/{out['key']}, target digest {out['digest']}")
    if out["skipped_ephemeral"]:
        print(f"{out['skipped_ephemeral']} ephemeral znodes in the snapshot were not re-created")
    for op, exc in out["errors"]:
        print(f"failed: {op.kind} {op.path}: {exc!r}", file=sys.stderr)
    for d in out["differences"]:
        print(f"after restore: {d}", file=sys.stderr)
    return EXIT_FAILED if out["errors"] or out["differences"] else EXIT_OK
