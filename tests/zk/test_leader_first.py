"""The sync engine's sessions go to each ensemble's leader when `srvr` says which one leads (wire.leader_first):
on real 3-node ensembles, with the fallbacks when nobody answers."""
from __future__ import annotations

from orchestrator.services.zk.session import close_client, open_client
from orchestrator.services.zk.wire import leader_first, server_mode
from tests.support.zk_ensemble import free_ports


def peer_port(ensemble) -> int:
    return ensemble.client._connection._socket.getpeername()[1]


def test_leader_first_puts_the_leader_first_and_keeps_the_chroot(zk):
    leader = zk.a.leader()
    assert leader is not None
    hosts = zk.a.connect_string
    ordered = leader_first(hosts + "/some/chroot")
    assert ordered is not None and ordered.startswith(f"127.0.0.1:{leader.client_port},")
    assert ordered.endswith("/some/chroot")
    assert sorted(ordered.removesuffix("/some/chroot").split(",")) == sorted(hosts.split(","))
    assert server_mode(("127.0.0.1", leader.client_port), 1.0) == "leader"


def test_leader_first_gives_up_quietly_when_no_server_says(zk):
    dead = free_ports(2)
    assert leader_first(",".join(f"127.0.0.1:{p}" for p in dead), timeout=0.5) is None
    assert leader_first(f"127.0.0.1:{zk.a.nodes[0].client_port}") is None  # one server: nothing to choose


def test_a_session_that_prefers_the_leader_is_on_it(zk):
    leader = zk.b.leader()
    preferred = open_client(zk.b.connect_string, [("digest", "orch:s3cret")], prefer_leader=True)
    try:
        assert peer_port(preferred) == leader.client_port
        assert preferred.hosts == zk.b.connect_string  # reported as given
    finally:
        close_client(preferred)
