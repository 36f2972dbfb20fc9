"""Archives you can trust (issue 15, red-team findings F8, F9, F15): restore verifies the snapshot before
touching the target, "newest" means newest by the time in the object's own name directly under the prefix,
the lifecycle check counts every rule that can expire a snapshot, retention is never shortened silently,
and bad URLs or corrupt objects end in one line. moto S3, real ZooKeeper ensembles."""
from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime

import pytest

from orchestrator.cli import main
from orchestrator.services.zk import archive
from orchestrator.services.zk.tree import Node
from tests.support.s3 import mocked_s3
from tests.zk.helpers import AUTH, bulk_create

BUCKET = "zk-archive"


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, BUCKET)


def snapshot(zk, url: str = f"s3://{BUCKET}/prod", *extra: str) -> int:
    return main(["zk", "snapshot", "--source", zk.a.connect_string, "--auth", AUTH, "--path", zk.root,
                 "--s3", url, *extra])


def restore(zk, url: str, *extra: str) -> int:
    return main(["zk", "restore", "--target", zk.b.connect_string, "--auth", AUTH, "--s3", url, *extra])


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def read_doc(s3, key: str) -> dict:
    return json.loads(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def put_doc(s3, key: str, doc) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(doc).encode()))


def eleven_nodes(zk) -> None:
    bulk_create(zk.ca, [(zk.root, b"root")] + [(f"{zk.root}/n{i:02d}", f"value {i}".encode()) for i in range(10)])


def assert_one_line(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err


# -- F8: restore verifies the snapshot ------------------------------------------------------------------------

@pytest.mark.parametrize("tamper, message", [
    ("data", "digest"),          # one node's data changed, "digest"/"znodes" left as they were
    ("truncate", "4 znodes"),    # the node list cut to 4 of 11
    ("acl", "digest"),           # one ACL changed
])
def test_restore_refuses_a_snapshot_that_does_not_match_its_digest_or_count(zk, s3, capsys, tamper, message):
    eleven_nodes(zk)
    assert snapshot(zk) == 0
    [key] = keys(s3)
    doc = read_doc(s3, key)
    assert doc["znodes"] == 11
    if tamper == "data":
        doc["nodes"][3]["data"] = base64.b64encode(b"evil").decode()
    elif tamper == "truncate":
        doc["nodes"] = doc["nodes"][:4]
    else:
        doc["nodes"][2]["acl"] = [["ip", "10.0.0.1", 31]]
    bad = key.replace("prod/", "bad/")
    put_doc(s3, bad, doc)
    capsys.readouterr()

    for extra in ((), ("--dry-run",), ("--replace",)):
        assert restore(zk, f"s3://{BUCKET}/{bad}", *extra) == 6
        err = capsys.readouterr().err
        assert_one_line(err)
        assert message in err and bad in err and "nothing was changed" in err
        assert zk.cb.exists(zk.root) is None  # the target was never touched


def test_restore_dry_run_shows_the_plan_and_changes_nothing(zk, s3, capsys):
    eleven_nodes(zk)
    assert snapshot(zk) == 0
    bulk_create(zk.cb, [(zk.root, b"on B"), (f"{zk.root}/only-on-b", b"x")])
    capsys.readouterr()
    assert restore(zk, f"s3://{BUCKET}/prod", "--dry-run", "--replace") == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "10 creates, 1 sets, 1 deletes" in out and "nothing was changed" in out
    assert sorted(zk.cb.get_children(zk.root)) == ["only-on-b"] and zk.cb.get(zk.root)[0] == b"on B"
    # Without --replace a dry run says what the real run would refuse.
    assert restore(zk, f"s3://{BUCKET}/prod", "--dry-run") == 6
    assert "pass --replace" in capsys.readouterr().err


def name(when: datetime) -> str:
    return archive.S3Location(BUCKET, "p").object_key(when).split("/", 1)[1]


def _encoded(root: str, value: bytes, when: datetime) -> bytes:
    tree = {root: Node(value, (("world", "anyone", 31),), "persistent")}
    return archive.encode(tree, [root], "test", when)


def test_newest_is_chosen_by_the_time_in_the_name_directly_under_the_prefix(zk, s3, capsys):
    r = zk.root
    new, old = datetime(2026, 11, 30, 7, 34, 17, 559054, tzinfo=UTC), datetime(2026, 11, 29, 7, tzinfo=UTC)
    newest_key = "prod/" + name(new)
    s3.put_object(Bucket=BUCKET, Key=newest_key, Body=_encoded(r, b"NEW", new))
    # Uploaded later (newer LastModified) but older by its own name.
    s3.put_object(Bucket=BUCKET, Key="prod/" + name(old), Body=_encoded(r, b"OLD", old))
    # Sub-folders are other archives, even when their name says later.
    later = datetime(2099, 1, 1, tzinfo=UTC)
    s3.put_object(Bucket=BUCKET, Key="prod/archive-2024/" + name(later),
                  Body=_encoded(r, b"SUBFOLDER", later))
    # A name that merely ends like a snapshot carries no time: not a candidate.
    s3.put_object(Bucket=BUCKET, Key="prod/zzz-zk-snapshot.json.gz", Body=_encoded(r, b"NAMELESS", later))

    assert restore(zk, f"s3://{BUCKET}/prod") == 0
    assert newest_key in capsys.readouterr().out
    assert zk.cb.get(r)[0] == b"NEW"


@pytest.mark.parametrize("body, message", [
    (b"\x1f\x8b\x08\x00" + b"\x00" * 6, "not a snapshot"),       # a gzip header and nothing else
    (gzip.compress(b"[1, 2]"), "not a snapshot"),                 # JSON, but a list
    (gzip.compress(json.dumps({"format": archive.FORMAT, "roots": ["/x"]}).encode()), "nodes"),
    (gzip.compress(json.dumps({"format": archive.FORMAT, "roots": ["/x"], "znodes": 1, "digest": "0",
                               "nodes": [{"path": "/x", "data": "***", "acl": [], "kind": "persistent"}]}
                              ).encode()), "base64"),
    (gzip.compress(json.dumps({"format": archive.FORMAT, "roots": ["/x"], "znodes": 1, "digest": "0",
                               "nodes": [{"path": "/y", "data": "", "acl": [], "kind": "persistent"}]}
                              ).encode()), "outside"),
])
def test_corrupt_snapshots_end_in_one_line(zk, s3, capsys, body, message):
    key = "junk/" + name(datetime(2026, 1, 1, tzinfo=UTC))
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert restore(zk, f"s3://{BUCKET}/{key}") == 2
    err = capsys.readouterr().err
    assert_one_line(err)
    assert message in err and key in err


# -- F9: lifecycle rules and retention ------------------------------------------------------------------------

def set_rules(s3, *rules: dict) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": list(rules)})


def rules(s3) -> dict[str, int]:
    got = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    return {r["ID"]: r["Expiration"]["Days"] for r in got}


@pytest.mark.parametrize("flt", [{}, {"Prefix": ""}, {"Prefix": "pr"}, {"Prefix": "prod/2026"}])
def test_a_shorter_rule_that_also_matches_is_reported(zk, s3, capsys, flt):
    bulk_create(zk.ca, [(zk.root, b"x")])
    ours = {"ID": "orchestrator-zk-snapshots:prod/", "Status": "Enabled", "Filter": {"Prefix": "prod/"},
            "Expiration": {"Days": 3}}
    set_rules(s3, {"ID": "tmp-cleanup", "Status": "Enabled", "Filter": flt, "Expiration": {"Days": 1}}, ours)
    for extra in ((), ("--check-lifecycle-only",)):
        assert snapshot(zk, f"s3://{BUCKET}/prod", *extra) == 1
        err = capsys.readouterr().err
        assert_one_line(err)
        assert "'tmp-cleanup'" in err and "after 1 day" in err and "effective" in err
    assert keys(s3) == [] and rules(s3) == {"tmp-cleanup": 1, ours["ID"]: 3}


def test_size_only_and_tag_filters_in_the_pure_check():
    size_only = {"ID": "small", "Status": "Enabled", "Filter": {"ObjectSizeLessThan": 1_000_000},
                 "Expiration": {"Days": 1}}
    and_size = {"ID": "and", "Status": "Enabled", "Filter": {"And": {"Prefix": "prod/", "ObjectSizeGreaterThan": 1}},
                "Expiration": {"Days": 2}}
    tagged = {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "tmp", "Value": "1"}},
              "Expiration": {"Days": 1}}
    disabled = {"ID": "off", "Status": "Disabled", "Filter": {}, "Expiration": {"Days": 1}}
    other = {"ID": "other", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 1}}
    assert [m.rule_id for m in archive.matching_rules([size_only, and_size, tagged, disabled, other], "prod/")] \
        == ["small", "and"]
    assert archive.effective_days([size_only, and_size], "prod/") == 1
    assert archive.effective_days([tagged, disabled, other], "prod/") is None


def test_retention_is_never_shortened_without_the_flag(zk, s3, capsys):
    bulk_create(zk.ca, [(zk.root, b"x")])
    assert snapshot(zk) == 0
    rule_id = "orchestrator-zk-snapshots:prod/"
    assert rules(s3) == {rule_id: 3}
    capsys.readouterr()

    assert snapshot(zk, f"s3://{BUCKET}/prod", "--retention-hours", "24") == 6
    err = capsys.readouterr().err
    assert_one_line(err)
    assert "--allow-shorter-retention" in err and "3 days" in err
    assert rules(s3) == {rule_id: 3} and len(keys(s3)) == 1

    assert snapshot(zk, f"s3://{BUCKET}/prod", "--retention-hours", "168") == 0  # longer: allowed
    assert rules(s3) == {rule_id: 7}
    assert snapshot(zk, f"s3://{BUCKET}/prod", "--retention-hours", "24", "--allow-shorter-retention") == 0
    assert rules(s3) == {rule_id: 1} and len(keys(s3)) == 3


def test_a_longer_whole_bucket_rule_is_not_undercut_silently(zk, s3, capsys):
    bulk_create(zk.ca, [(zk.root, b"x")])
    set_rules(s3, {"ID": "everything-30d", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}})
    assert snapshot(zk) == 6
    err = capsys.readouterr().err
    assert "'everything-30d'" in err and "30 days" in err and "--allow-shorter-retention" in err
    assert keys(s3) == [] and rules(s3) == {"everything-30d": 30}


# -- S3 URLs --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    f"s3://{BUCKET}/../x", f"s3://{BUCKET}/a/../x", f"s3://{BUCKET}/x?versionId=1", f"s3://{BUCKET}/ with space",
    f"s3://{BUCKET}", f"s3://{BUCKET}/", f"s3://{BUCKET}/a//b", f"s3://{BUCKET}/./a", f"s3://{BUCKET}/x#frag",
    "s3://Bad_Bucket!/x", "s3://ab/x", f"s3://{BUCKET}/tab\there",
])
def test_bad_s3_urls_are_refused_before_anything_is_written(zk, s3, capsys, url):
    bulk_create(zk.ca, [(zk.root, b"x")])
    assert snapshot(zk, url) == 2
    err = capsys.readouterr().err
    assert_one_line(err)
    assert "--s3" in err
    assert keys(s3) == []
    with pytest.raises(Exception, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)
    assert restore(zk, url) == 2


def test_a_path_missing_on_the_source_is_not_archived(zk, s3, capsys):
    # A mistyped path used to write a snapshot of 0 znodes, which a later restore (with --replace) would
    # have turned into deleting the target's subtree.
    assert snapshot(zk) == 2
    line = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(line) == 1 and f"{zk.root} does not exist on the source" in line[0]
    assert keys(s3) == []
    with pytest.raises(Exception, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)


def test_a_snapshot_of_nothing_is_never_restored(zk, s3, capsys):
    # What an older version wrote for a missing path: 0 znodes, a valid digest. With --replace it would
    # have deleted the target's subtree.
    key = "old/" + name(datetime(2026, 1, 1, tzinfo=UTC))
    s3.put_object(Bucket=BUCKET, Key=key, Body=archive.encode({}, [zk.root], "old", datetime(2026, 1, 1, tzinfo=UTC)))
    bulk_create(zk.cb, [(zk.root, b"live on B")])
    assert restore(zk, f"s3://{BUCKET}/{key}", "--replace") == 6
    assert_one_line(err := capsys.readouterr().err)
    assert "holds no znode under" in err
    assert zk.cb.get(zk.root)[0] == b"live on B"
