"""Ensemble identity decided by the servers (a probe znode), not by how the connect string is spelled.

Red-team F3/F12: `127.0.0.1:P` vs `localhost:P`, one member vs the whole list, passed as different ensembles,
so `zk sync` onto its own source deposed a live leader and a target chroot inside the source path copied the
tree into itself. Each spelling below reaches ensemble A; none may pass as another ensemble.
"""
from __future__ import annotations

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, ANYONE_ID_UNSAFE, OPEN_ACL_UNSAFE, Permissions

from orchestrator.errors import RefusedError
from orchestrator.services.zk.identity import PROBE_PREFIX, ensure_distinct, same_ensemble
from tests.zk.helpers import ORCH_ACL

# Some chroots here are meant not to exist (the probe must work regardless); kazoo warns about them.
pytestmark = pytest.mark.filterwarnings("ignore:No chroot path exists:UserWarning")


def _probes_left(client) -> list[str]:
    return [c for c in client.get_children("/") if c.startswith(PROBE_PREFIX)]


def test_every_spelling_of_one_ensemble_is_the_same_ensemble(zk, spellings):
    for name, hosts in spellings.items():
        other = zk.client_for(hosts)
        assert same_ensemble(zk.ca, other), name
        assert same_ensemble(other, zk.ca), name
        # A chroot does not hide the ensemble: the probe is placed outside it.
        chrooted = zk.client_for(hosts + zk.root)
        assert same_ensemble(zk.ca, chrooted), name + " with a chroot"
    assert _probes_left(zk.ca) == []


def test_two_ensembles_are_different_and_no_probe_stays(zk):
    assert not same_ensemble(zk.ca, zk.cb)
    assert not same_ensemble(zk.cb, zk.ca)
    assert _probes_left(zk.ca) == [] and _probes_left(zk.cb) == []


def test_overlapping_roots_on_one_ensemble_are_refused(zk, spellings):
    r = zk.root
    zk.ca.ensure_path(f"{r}/blue")
    alias = next(iter(spellings.values()))
    with pytest.raises(RefusedError, match="same ensemble"):
        ensure_distinct(zk.ca, r, zk.client_for(alias), r)
    # a target chroot inside the source root (F12): target /r/blue + /r lies under source /r
    with pytest.raises(RefusedError, match="is under"):
        ensure_distinct(zk.ca, r, zk.client_for(f"{alias}{r}/blue"), r)
    # the reverse: the source inside the target
    with pytest.raises(RefusedError, match="contains"):
        ensure_distinct(zk.client_for(f"{alias}{r}/blue"), r, zk.ca, r)
    # any pair among several roots
    with pytest.raises(RefusedError):
        ensure_distinct(zk.ca, [f"{r}/x", f"{r}/blue"], zk.client_for(alias), [f"{r}/blue/deep"])


def test_disjoint_roots_on_one_ensemble_and_equal_roots_on_two_are_allowed(zk, spellings):
    r = zk.root
    alias = next(iter(spellings.values()))
    ensure_distinct(zk.client_for(f"{zk.a.connect_string}{r}/blue"), "/app", zk.client_for(f"{alias}{r}/green"),
                    "/app")
    ensure_distinct(zk.ca, f"{r}/blue", zk.client_for(alias), f"{r}/bluer")  # a prefix of the name is not "under"
    ensure_distinct(zk.ca, r, zk.cb, r)
    assert _probes_left(zk.ca) == [] and _probes_left(zk.cb) == []


def test_probe_falls_back_below_a_root_that_refuses_creates(zk):
    """A hardened ensemble whose `/` is read-only for our identity: the probe goes under the roots' parents."""
    r = zk.root
    zk.ca.create(r, b"", acl=ORCH_ACL)  # ours: we may create under it
    original, _ = zk.ca.get_acls("/")
    # read and admin only (admin so that the finally block can put the ACL back)
    zk.ca.set_acls("/", [ACL(Permissions.READ | Permissions.ADMIN, ANYONE_ID_UNSAFE)])
    try:
        with pytest.raises(NoAuthError):
            zk.ca.create("/no-creates-here", b"")
        assert same_ensemble(zk.ca, zk.client_for(f"localhost:{zk.a.nodes[0].client_port}"),
                             probe_parents=[f"{r}/app"])
        assert not same_ensemble(zk.ca, zk.cb, probe_parents=[f"{r}/app"])
        with pytest.raises(RefusedError, match="cannot tell"):
            same_ensemble(zk.ca, zk.client_for(zk.a.connect_string), probe_parents=["/elsewhere/app"])
    finally:
        zk.ca.set_acls("/", original or OPEN_ACL_UNSAFE)
    assert zk.ca.get_children(r) == []


def test_the_probe_is_written_on_the_target_not_on_a_live_source(zk, spellings):
    """ZooKeeper counts child creates and deletes in the parent's cversion: / of the source must not move."""
    def top_cversion(client) -> int:
        client.sync("/")
        return client.exists("/").cversion

    before = top_cversion(zk.ca)
    ensure_distinct(zk.ca, zk.root, zk.cb, zk.root)  # two ensembles
    assert top_cversion(zk.ca) == before
    # the control: on one ensemble the probe comes and goes under /, which moves it by 2 (create + delete)
    ensure_distinct(zk.ca, f"{zk.root}/a", zk.client_for(spellings["localhost"]), f"{zk.root}/b")  # disjoint: no probe
    assert top_cversion(zk.ca) == before
    assert same_ensemble(zk.client_for(spellings["localhost"]), zk.ca)
    assert top_cversion(zk.ca) == before + 2
