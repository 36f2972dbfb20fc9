"""Data safety of `orchestrator zk copy|sync|verify` (issue 15; red-team findings F2, F3, F12, F14, F15).

Every test here reproduces a finding of the red-team report against the commands as a user runs them, on
the real ensembles A and B: a mistyped path, chroot or argument order must never delete what the target
holds, a second spelling of the source must never pass as another ensemble, and no input ends in a
traceback.
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest

from orchestrator.cli import main
from orchestrator.errors import ExitCode
from orchestrator.services.zk.verify import verify
from tests.zk.helpers import AUTH, ORCH_ACL, Cli, Forward, bulk_create, orchestrator, wait_until, wide_tree


def zk_cmd(action: str, source: str, target: str, *paths: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["zk", action, "--source", source, "--target", target, "--auth", AUTH,
            *sum((["--path", p] for p in paths), []), *extra]


def count(client, root: str) -> int:
    if client.exists(root) is None:
        return 0
    return 1 + sum(count(client, f"{root}/{c}") for c in client.get_children(root))


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- F2: a missing or empty source, swapped arguments, deletes -------------------------------------------

def test_copy_of_a_missing_source_root_is_refused_and_the_target_kept(zk, capsys):
    r = zk.root
    bulk_create(zk.cb, wide_tree(r, 3, 10))  # 34 znodes on B, nothing on A
    rc = main(zk_cmd("copy", zk.a.connect_string, zk.b.connect_string, r))
    err = capsys.readouterr().err
    assert rc == ExitCode.INPUT, err
    assert f"{r} does not exist on the source" in one_error_line(err)
    assert count(zk.cb, r) == 34


def test_copy_through_a_mistyped_source_chroot_is_refused(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 2, 5))
    bulk_create(zk.cb, wide_tree(r, 2, 5))
    rc = main(zk_cmd("copy", zk.a.connect_string + "/prd", zk.b.connect_string, r))
    assert rc == ExitCode.INPUT
    assert "does not exist on the source" in capsys.readouterr().err
    assert count(zk.cb, r) == 13


def test_copy_of_an_empty_source_root_is_refused(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, [(r, b"")])
    bulk_create(zk.cb, wide_tree(r, 2, 5))
    rc = main(zk_cmd("copy", zk.a.connect_string, zk.b.connect_string, r))
    assert rc == ExitCode.INPUT
    assert f"{r} is empty on the source" in capsys.readouterr().err
    assert count(zk.cb, r) == 13


def test_swapped_source_and_target_are_refused_with_the_plan(zk, capsys):
    """A is live (31 znodes); B holds an older partial copy. `--source B --target A` would wipe 20 of A's."""
    r = zk.root
    live = wide_tree(r, 3, 9) + [(f"{r}/b000/new", b"n")]
    bulk_create(zk.ca, live)
    bulk_create(zk.cb, wide_tree(r, 1, 9))
    rc = main(zk_cmd("copy", zk.b.connect_string, zk.a.connect_string, r))
    out, err = capsys.readouterr()
    assert rc == ExitCode.REFUSED, out + err
    assert "0 creates, 0 sets, 21 deletes" in out and f"delete {r}/b000/new" in out
    assert "--allow-deletes" in one_error_line(err)
    assert count(zk.ca, r) == len(live)


def test_deletes_need_allow_deletes_and_dry_run_changes_nothing(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, [(r, b"new"), (f"{r}/keep", b"k"), (f"{r}/fresh", b"f")])
    bulk_create(zk.cb, [(r, b"old"), (f"{r}/keep", b"k"), (f"{r}/stale", b"s"), (f"{r}/stale/kid", b"s")])
    base = zk_cmd("copy", zk.a.connect_string, zk.b.connect_string, r)

    assert main(base + ["--dry-run"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "1 creates, 1 sets, 2 deletes" in out and "dry run: nothing was changed" in out
    assert main(base) == ExitCode.REFUSED
    capsys.readouterr()
    assert zk.cb.get(r)[0] == b"old" and zk.cb.exists(f"{r}/stale/kid") and not zk.cb.exists(f"{r}/fresh")

    assert main(base + ["--allow-deletes"]) == ExitCode.OK
    assert verify(zk.A, zk.B, [r]).identical


def test_copy_of_the_whole_tree_does_not_wipe_the_target_s_other_subtrees(zk, capsys):
    """F2 with `--path /`: every target subtree the source lacks (another application's data) would go."""
    mine, theirs = zk.root + "-a", zk.root + "-other-app"
    zk.extra_roots = [mine, theirs]
    bulk_create(zk.ca, wide_tree(mine, 1, 2))
    bulk_create(zk.cb, wide_tree(theirs, 2, 5))
    rc = main(zk_cmd("copy", zk.a.connect_string, zk.b.connect_string, "/"))
    out, err = capsys.readouterr()
    assert rc == ExitCode.REFUSED, out + err
    deletes = int(re.search(r"(\d+) deletes", out).group(1))
    assert deletes >= 13  # the other application's subtree at least (the ensembles may hold more)
    assert count(zk.cb, theirs) == 13 and zk.cb.exists(mine) is None


def test_dry_run_of_a_fresh_copy_writes_nothing(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 2, 5))
    assert main(zk_cmd("copy", zk.a.connect_string, zk.b.connect_string, r, extra=("--dry-run",))) == 0
    assert "13 creates, 0 sets, 0 deletes" in capsys.readouterr().out
    assert zk.cb.exists(r) is None


def test_sync_bootstrap_has_the_same_guards(zk):
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/a", b"a")])
    bulk_create(zk.cb, [(r, b""), (f"{r}/a", b"a"), (f"{r}/gone", b"g")])
    sync = zk_cmd("sync", zk.a.connect_string, zk.b.connect_string, r,
                  extra=("--metrics-port", "0", "--metrics-address", "127.0.0.1"))
    dry = orchestrator(*sync, "--dry-run", timeout=60)
    assert dry.returncode == 0 and "0 creates, 0 sets, 1 deletes" in dry.stdout, dry.stdout + dry.stderr
    refused = orchestrator(*sync, timeout=60)
    assert refused.returncode == ExitCode.REFUSED and "--allow-deletes" in one_error_line(refused.stderr)
    missing = orchestrator(*zk_cmd("sync", zk.a.connect_string, zk.b.connect_string, r + "-typo",
                                   extra=("--metrics-port", "0")), timeout=60)
    assert missing.returncode == ExitCode.INPUT and "does not exist on the source" in missing.stderr
    assert zk.cb.exists(f"{r}/gone")
    engine = Cli(*sync, "--allow-deletes")
    try:
        assert "(persistent recursive watches)" in engine.wait_line("following changes")  # auto, on 3.8
        wait_until(lambda: zk.cb.exists(f"{r}/gone") is None, what="the allowed delete")
        assert engine.kill(signal.SIGTERM) == 0
    finally:
        engine.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_copy_interrupted_says_the_target_is_partial_then_rerun_finishes(zk, sig):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 100, 100, size=512))
    total = 1 + 100 + 100 * 100
    # The target is reached through a forward that holds everything once 300 KB (of ~5.5 MB) went through:
    # the signal always lands mid-copy, however fast the machine. (The signal has to arrive before kazoo
    # gives the held connection up, 2/3 of the 10-s session timeout; then closing waits that long. Few
    # enough requests are held that the server does not throttle its other clients.)
    held = Forward(zk.b.nodes[0].client_port, hold_after=300_000)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli",
                             *zk_cmd("copy", zk.a.connect_string, held.address, r)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert held.held.wait(60), "the copy never wrote 300 KB"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        held.close()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "target is partial, re-run to finish" in one_error_line(err)
    # (B's member may take a moment to drop the held connection's requests: retried, not timed)
    assert wait_until(lambda: verify(zk.A, zk.B, [r]), what="B readable").target_count < total
    again = orchestrator(*zk_cmd("copy", zk.a.connect_string, zk.b.connect_string, r))
    assert again.returncode == 0, again.stderr
    report = verify(zk.A, zk.B, [r])
    assert report.identical and report.target_count == total


def test_copy_losing_the_target_ensemble_is_one_line_and_exit_5(zk):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 100, 100, size=512))
    route = Forward(zk.b.nodes[0].client_port, hold_after=300_000)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli",
                             *zk_cmd("copy", zk.a.connect_string, route.address, r)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert route.held.wait(60), "the copy never wrote 300 KB"
        route.close()  # the only way to the target is gone mid-copy (connections dropped, then refused)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        route.close()
    assert proc.returncode == ExitCode.UNREACHABLE, err
    assert "the target is partial, re-run to finish" in one_error_line(err)


def test_sync_stopped_during_its_initial_copy_says_the_target_is_partial(zk):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 100, 100, size=512))
    total = 1 + 100 + 100 * 100
    held = Forward(zk.b.nodes[0].client_port, hold_after=300_000)  # the signal lands mid-bootstrap
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli",
                             *zk_cmd("sync", zk.a.connect_string, held.address, r,
                                     extra=("--metrics-port", "0", "--metrics-address", "127.0.0.1"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert held.held.wait(60), "the sync never wrote 300 KB"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        held.close()
    assert proc.returncode == ExitCode.INTERRUPTED, out + err
    assert "target is partial, re-run to finish" in one_error_line(err)
    assert "bootstrapped" not in out
    assert wait_until(lambda: verify(zk.A, zk.B, [r]), what="B readable").target_count < total


# -- F3, F12: the same ensemble under another spelling ------------------------------------------------------

SPELLINGS = ["reordered list", "localhost", "one member", "alias on a forward", "IPv6 loopback"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_copy_onto_its_own_source_under_another_spelling_is_refused(zk, capsys, spellings, spelling):
    if spelling not in spellings:
        pytest.skip(f"{spelling} is not available on this machine")
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 2, 3))
    rc = main(zk_cmd("copy", zk.a.connect_string, spellings[spelling], r, extra=("--allow-deletes",)))
    assert rc == ExitCode.REFUSED
    assert "same ensemble" in one_error_line(capsys.readouterr().err)
    assert count(zk.ca, r) == 9


def test_target_chroot_inside_the_source_root_is_refused(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 1, 3))
    rc = main(zk_cmd("copy", zk.a.connect_string, f"localhost:{zk.a.nodes[0].client_port}{r}", r))
    assert rc == ExitCode.REFUSED and "is under the source root" in capsys.readouterr().err
    assert count(zk.ca, r) == 5  # not 10: the tree was not copied into itself


def test_sync_into_a_chroot_inside_its_source_is_refused(zk, spellings):
    """F12: `zk sync --source A --target A/ov --path /ov` grew /ov/ov/ov/… 619 levels deep in 6 s."""
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 1, 3))
    done = orchestrator(*zk_cmd("sync", zk.a.connect_string, spellings["alias on a forward"] + r, r,
                                extra=("--metrics-port", "0", "--metrics-address", "127.0.0.1",
                                       "--allow-deletes")), timeout=60)
    assert done.returncode == ExitCode.REFUSED, done.stdout + done.stderr
    assert "is under the source root" in one_error_line(done.stderr)
    assert count(zk.ca, r) == 5


def test_sync_onto_its_own_source_leaves_a_live_leader_alone(zk):
    """F3: the engine would re-create the leader's ephemeral node under its own session, then drop it."""
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/log", b"l")])
    holder = zk.client("a")
    leader = holder.create(f"{r}/leader_", b"master@a", ephemeral=True, sequence=True)
    a1 = zk.a.nodes[0].client_port
    done = orchestrator(*zk_cmd("sync", f"127.0.0.1:{a1}", f"localhost:{a1}", r,
                                extra=("--metrics-port", "0", "--metrics-address", "127.0.0.1")), timeout=60)
    assert done.returncode == ExitCode.REFUSED, done.stdout + done.stderr
    assert "same ensemble" in one_error_line(done.stderr)
    assert zk.ca.exists(leader).ephemeralOwner == holder.client_id[0]


def test_moving_a_subtree_within_one_ensemble_through_chroots_is_allowed(zk, capsys):
    """Disjoint roots on one ensemble are safe: `orchestrator diff` advises this copy before a zk_path change
    (/marathon -> /marathon2), and the target chroot may not exist yet."""
    r = zk.root
    bulk_create(zk.ca, [(r, b""), *wide_tree(f"{r}/marathon", 2, 3)])
    old, new = f"{zk.a.connect_string}{r}/marathon", f"localhost:{zk.a.nodes[0].client_port}{r}/marathon2"
    assert main(zk_cmd("copy", old, new, "/")) == ExitCode.OK, capsys.readouterr()
    assert main(zk_cmd("verify", old, new, "/")) == ExitCode.OK
    assert "compared /: 9 znodes on the source, 9 on the target" in capsys.readouterr().out
    assert count(zk.ca, f"{r}/marathon2") == 9 and count(zk.ca, f"{r}/marathon") == 9


def test_verify_on_one_ensemble_is_refused(zk, capsys):
    bulk_create(zk.ca, [(zk.root, b"")])
    rc = main(zk_cmd("verify", zk.a.connect_string, f"localhost:{zk.a.nodes[1].client_port}", zk.root))
    assert rc == ExitCode.REFUSED and "same ensemble" in capsys.readouterr().err


# -- F14: verify cannot pass vacuously --------------------------------------------------------------------

def test_verify_of_a_path_absent_on_both_sides_is_an_error(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/x", b"1")])
    bulk_create(zk.cb, [(r, b""), (f"{r}/x", b"1")])
    rc = main(zk_cmd("verify", zk.a.connect_string, zk.b.connect_string, r + "s"))
    assert rc == ExitCode.INPUT
    assert f"{r}s exists on neither" in one_error_line(capsys.readouterr().err)
    # one good path does not excuse a typo in the other
    rc = main(zk_cmd("verify", zk.a.connect_string, zk.b.connect_string, r, r + "-typo"))
    assert rc == ExitCode.INPUT


def test_verify_says_what_it_compared(zk, capsys):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 2, 3))
    bulk_create(zk.cb, wide_tree(r, 2, 3))
    assert main(zk_cmd("verify", zk.a.connect_string, zk.b.connect_string, r)) == 0
    assert f"compared {r}: 9 znodes on the source, 9 on the target" in capsys.readouterr().out
    assert main(zk_cmd("verify", zk.a.connect_string, zk.b.connect_string, r, extra=("--json",))) == 0
    assert '"roots": {' in capsys.readouterr().out


# -- F15: numeric options, ports, permissions: one line, the right code, nothing changed -----------------

@pytest.mark.parametrize("action, extra, message", [
    ("sync", ("--resync-interval", "-1"), "--resync-interval -1"),
    ("sync", ("--resync-interval", "nan"), "--resync-interval nan"),
    ("sync", ("--metrics-port", "70000"), "--metrics-port 70000"),
    ("copy", ("--connect-timeout", "-5"), "--connect-timeout -5"),
    ("copy", ("--session-timeout", "0"), "--session-timeout 0"),
    ("verify", ("--recheck", "-1"), "--recheck -1"),
    ("verify", ("--connect-timeout", "inf"), "--connect-timeout inf"),
])
def test_numeric_options_are_validated_before_connecting(zk, capsys, action, extra, message):
    # 127.0.0.1:1 answers nothing: a check made after connecting would report "unreachable" (5) instead
    rc = main(zk_cmd(action, zk.a.connect_string, "127.0.0.1:1", zk.root, extra=extra))
    assert rc == ExitCode.INPUT
    assert message in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv", [
    ("zk", "snapshot", "--source", "127.0.0.1:1", "--path", "/x", "--s3", "s3://bucket/p", "--connect-timeout", "-1"),
    ("zk", "restore", "--target", "127.0.0.1:1", "--s3", "s3://bucket/p", "--session-timeout", "0"),
])
def test_snapshot_and_restore_timeouts_are_validated_too(capsys, argv):
    assert main(list(argv)) == ExitCode.INPUT
    assert f"{argv[-2]} {argv[-1]}" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("action", ["copy", "sync", "verify"])
def test_an_unreachable_ensemble_is_one_line_and_exit_5(zk, action):
    """F16: kazoo printed dozens of "Connection dropped" lines before the error."""
    done = orchestrator(*zk_cmd(action, zk.a.connect_string, "127.0.0.1:1", zk.root,
                                extra=("--connect-timeout", "2", "--metrics-port", "0") if action == "sync"
                                else ("--connect-timeout", "2")), timeout=60)
    assert done.returncode == ExitCode.UNREACHABLE
    assert "cannot connect to the target ensemble '127.0.0.1:1'" in one_error_line(done.stderr)


def test_metrics_port_in_use_is_one_line_and_nothing_is_written(zk):
    r = zk.root
    bulk_create(zk.ca, [(r, b""), (f"{r}/x", b"1")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = orchestrator(*zk_cmd("sync", zk.a.connect_string, zk.b.connect_string, r,
                                    extra=("--metrics-port", str(port), "--metrics-address", "127.0.0.1")),
                            timeout=60)
    assert done.returncode == ExitCode.INPUT
    assert f"--metrics-port {port}" in one_error_line(done.stderr) and "in use" in done.stderr
    assert zk.cb.exists(r) is None


@pytest.mark.parametrize("action", ["copy", "verify"])
def test_without_the_credentials_the_source_needs(zk, capsys, monkeypatch, action):
    monkeypatch.delenv("ORCHESTRATOR_ZK_AUTH", raising=False)
    r = zk.root
    bulk_create(zk.ca, [(r, b"")])
    zk.ca.create(f"{r}/secret", b"s", acl=ORCH_ACL)
    rc = main(["zk", action, "--source", zk.a.connect_string, "--target", zk.b.connect_string, "--path", r])
    assert rc == ExitCode.INPUT
    line = one_error_line(capsys.readouterr().err)
    assert "no permission" in line and f"{r}/secret" in line and "ORCHESTRATOR_ZK_AUTH" in line
    assert zk.cb.exists(r) is None


def test_a_sync_trace_file_that_cannot_be_written_is_refused_before_anything_starts(capsys, tmp_path):
    unwritable = tmp_path / "no-such-dir" / "trace.jsonl"
    rc = main(zk_cmd("sync", "127.0.0.1:1", "127.0.0.1:2", "/x", extra=("--trace", str(unwritable))))
    assert rc == ExitCode.INPUT
    line = one_error_line(capsys.readouterr().err)
    assert "--trace" in line and str(unwritable) in line
