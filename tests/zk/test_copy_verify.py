"""Bootstrap copy (`orchestrator zk copy`) and verification (`orchestrator zk verify`) on real ensembles."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest
from kazoo.security import ACL, READ_ACL_UNSAFE, Id

from orchestrator.cli import main
from orchestrator.errors import ExitCode
from orchestrator.services.zk.tree import acl_key
from orchestrator.services.zk.verify import Difference, verify
from tests.zk.helpers import AUTH, ORCH_ACL, bulk_create, wait_until, wide_tree

BINARY = bytes(range(256)) * 4
UNICODE = "ünïcødé-名前-Ωμέγα"  # ZooKeeper refuses surrogates (emoji) in names


def copy(zk, *paths: str, extra: tuple[str, ...] = ()) -> int:
    return main(["zk", "copy", "--source", zk.a.connect_string, "--target", zk.b.connect_string,
                 "--auth", AUTH, *sum((["--path", p] for p in paths), []), *extra])


def snapshot(client, root: str) -> dict:
    """Independent of the engine: every node under root as (data hash, ACL, ephemeral?)."""
    out = {}
    stack = [root]
    while stack:
        p = stack.pop()
        data, stat = client.get(p)
        acl, _ = client.get_acls(p)
        out[p] = (hashlib.sha256(data).hexdigest(), acl_key(acl), stat.ephemeralOwner != 0)
        stack.extend(f"{p}/{c}" for c in client.get_children(p))
    return out


def test_copy_preserves_data_acls_binary_unicode_and_skips_ephemerals(zk, capsys):
    r = zk.root
    zk.ca.create(r, b"top")
    zk.ca.create(f"{r}/bin", BINARY)
    zk.ca.create(f"{r}/empty", b"")
    zk.ca.create(f"{r}/{UNICODE}", UNICODE.encode())
    zk.ca.create(f"{r}/{UNICODE}/child", b"c")
    zk.ca.create(f"{r}/secret", b"for orch only", acl=ORCH_ACL)
    zk.ca.create(f"{r}/secret/inner", b"inner", acl=ORCH_ACL)
    zk.ca.create(f"{r}/readonly", b"ro", acl=READ_ACL_UNSAFE)
    zk.ca.create(f"{r}/mixed", b"m", acl=[ACL(1 | 8, Id("world", "anyone"))] + ORCH_ACL)
    owner = zk.client("a")
    owner.create(f"{r}/leader", b"session-owned", ephemeral=True)

    assert copy(zk, r) == 0
    out = capsys.readouterr().out
    assert "1 ephemeral znodes not copied" in out

    source, target = snapshot(zk.ca, r), snapshot(zk.cb, r)
    assert f"{r}/leader" in source and f"{r}/leader" not in target
    del source[f"{r}/leader"]
    assert target == source
    assert zk.cb.get(f"{r}/bin")[0] == BINARY
    assert not any(ephemeral for _, _, ephemeral in target.values())


def test_copy_is_source_wins_and_idempotent(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, [(r, b"a"), (f"{r}/same", b"1"), (f"{r}/data", b"new"), (f"{r}/acl", b"x"),
                        (f"{r}/only-a", b"a"), (f"{r}/only-a/kid", b"k")])
    bulk_create(zk.cb, [(r, b"b"), (f"{r}/same", b"1"), (f"{r}/data", b"old"), (f"{r}/extra", b"e"),
                        (f"{r}/extra/deep", b"d")])
    zk.cb.create(f"{r}/acl", b"x", acl=READ_ACL_UNSAFE + ORCH_ACL)

    # the copy deletes two target nodes: refused until allowed (issue 15), then done
    assert copy(zk, r) == ExitCode.REFUSED
    assert "2 creates, 2 sets, 2 deletes, 0 replaced, 1 ACL changes" in capsys.readouterr().out
    assert zk.cb.exists(f"{r}/extra/deep")
    assert copy(zk, r, extra=("--allow-deletes",)) == 0
    first = capsys.readouterr().out
    assert "4 creates" not in first and "2 creates, 2 sets, 2 deletes, 1 acls, 0 errors" in first
    assert snapshot(zk.cb, r) == snapshot(zk.ca, r)

    assert copy(zk, r) == 0
    assert "0 creates, 0 sets, 0 deletes, 0 acls, 0 errors" in capsys.readouterr().out


def test_copy_large_nodes_and_deep_paths(zk):
    r = zk.root
    near_limit = os.urandom(1024 * 1024 - 200)  # the largest value a default server accepts is ~1 MiB - 100 B
    zk.ca.create(r, b"")
    zk.ca.create(f"{r}/big1", near_limit)
    zk.ca.create(f"{r}/big2", near_limit[::-1])
    deep = r + "".join(f"/d{i}" for i in range(60))
    zk.ca.create(deep, b"bottom", makepath=True)

    assert copy(zk, r) == 0
    assert zk.cb.get(f"{r}/big1")[0] == near_limit
    assert zk.cb.get(f"{r}/big2")[0] == near_limit[::-1]
    assert zk.cb.get(deep)[0] == b"bottom"
    assert verify(zk.A, zk.B, [r]).identical


def test_copy_ten_thousand_nodes_and_several_paths(zk):
    r1, r2 = zk.root + "-x", zk.root + "-y"
    zk.extra_roots = [r1, r2]
    bulk_create(zk.ca, wide_tree(r1, 100, 100, size=64))  # 10,101 znodes
    bulk_create(zk.ca, wide_tree(r2, 2, 5))
    assert copy(zk, r1, r2) == 0
    report = verify(zk.A, zk.B, [r1, r2])
    assert report.identical, report.lines()[:20]
    assert report.source_count == 10_101 + 13 == report.target_count


def test_copy_killed_mid_bootstrap_then_rerun_converges(zk):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 100, 100, size=512))
    total = 1 + 100 + 100 * 100
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "zk", "copy", "--source", zk.a.connect_string,
                             "--target", zk.b.connect_string, "--auth", AUTH, "--path", r],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Kill as soon as the first writes land: the target then holds a partial tree.
        wait_until(lambda: zk.cb.exists(r), timeout=60, interval=0.005, what="first writes on the target")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    partial = verify(zk.A, zk.B, [r])
    assert partial.target_count < total and not partial.identical, "copy finished before it could be killed"

    assert copy(zk, r) == 0
    report = verify(zk.A, zk.B, [r])
    assert report.identical and report.target_count == total


def test_verify_detects_each_kind_of_difference(zk):
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/same", b"s"), (f"{r}/missing", b"m"), (f"{r}/missing/kid", b"k"),
                        (f"{r}/data", b"one"), (f"{r}/acl", b"a"), (f"{r}/kind", b"k")])
    bulk_create(zk.cb, [(r, b""), (f"{r}/same", b"s"), (f"{r}/extra", b"e"), (f"{r}/data", b"two"),
                        (f"{r}/acl", b"a")])
    zk.cb.set_acls(f"{r}/acl", READ_ACL_UNSAFE + ORCH_ACL)
    holder = zk.client("b")
    holder.create(f"{r}/kind", b"k", ephemeral=True)

    report = verify(zk.A, zk.B, [r])
    got = {(d.kind, d.path) for d in report.differences}
    assert got == {("missing", f"{r}/missing"), ("missing", f"{r}/missing/kid"), ("extra", f"{r}/extra"),
                   ("data", f"{r}/data"), ("acl", f"{r}/acl"), ("kind", f"{r}/kind")}
    kind = next(d for d in report.differences if d.kind == "kind")
    assert (kind.source, kind.target) == ("persistent", "ephemeral")
    assert report.source_digest != report.target_digest
    # Ignoring ephemeral nodes turns the kind difference into a missing node.
    ignoring = {(d.kind, d.path) for d in verify(zk.A, zk.B, [r], ignore_ephemeral=True).differences}
    assert ("missing", f"{r}/kind") in ignoring and ("kind", f"{r}/kind") not in ignoring


def test_verify_cli_exit_codes_and_listing(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/x", b"1")])
    bulk_create(zk.cb, [(r, b""), (f"{r}/x", b"2")])
    args = ["zk", "verify", "--source", zk.a.connect_string, "--target", zk.b.connect_string, "--auth", AUTH,
            "--path", r]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"data     {r}/x  source=sha256:" in out and "1 differences" in out
    zk.cb.set(f"{r}/x", b"1")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("identical")
    digests = [line.split("digest ")[1] for line in out.splitlines() if "digest" in line]
    assert len(digests) == 2 and digests[0] == digests[1]


def test_verify_recheck_waits_out_changes_in_flight(zk):
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/x", b"new")])
    bulk_create(zk.cb, [(r, b""), (f"{r}/x", b"old")])
    fixer = __import__("threading").Timer(0.3, lambda: zk.cb.set(f"{r}/x", b"new"))
    fixer.start()
    try:
        assert verify(zk.A, zk.B, [r], rechecks=5, recheck_delay=0.2).identical
    finally:
        fixer.join()
    zk.cb.set(f"{r}/x", b"stale")
    report = verify(zk.A, zk.B, [r], rechecks=2, recheck_delay=0.05)
    assert report.differences == [Difference("data", f"{r}/x", report.differences[0].source,
                                             report.differences[0].target)]


@pytest.mark.parametrize("paths, message", [
    (["relative"], "invalid znode path"),
    (["/a/"], "invalid znode path"),
    (["/zookeeper/quota"], "ZooKeeper's own subtree"),
    (["/t", "/t/inner"], "inside --path /t"),
])
def test_copy_bad_paths_are_refused_before_anything_changes(zk, capsys, paths, message):
    bulk_create(zk.ca, [(zk.root, b"")])
    rc = main(["zk", "copy", "--source", zk.a.connect_string, "--target", zk.b.connect_string,
               *sum((["--path", p] for p in paths), [])])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert zk.cb.exists(zk.root) is None


def test_copy_same_ensemble_and_unreachable_target_are_refused(zk, capsys):
    bulk_create(zk.ca, [(zk.root, b"x"), (f"{zk.root}/kid", b"k")])
    same = main(["zk", "copy", "--source", zk.a.connect_string, "--target",
                 ",".join(reversed(zk.a.connect_string.split(","))), "--path", zk.root])
    assert same == ExitCode.REFUSED and "same ensemble" in capsys.readouterr().err
    unreachable = main(["zk", "copy", "--source", zk.a.connect_string, "--target", "127.0.0.1:1",
                        "--connect-timeout", "1", "--path", zk.root])
    assert unreachable == ExitCode.UNREACHABLE and "cannot connect to the target" in capsys.readouterr().err
    assert zk.ca.get(zk.root)[0] == b"x"
