"""Two real 3-node ZooKeeper ensembles (A = source, B = target) on loopback, shared by the session.

Each test works under its own root path and gets fresh clients; nodes a test stops are restarted and
the quorum awaited before the next test, so one fault test cannot leak into another.
"""
from __future__ import annotations

import re
import socket

import pytest

from tests.support.tools import in_ci
from tests.support.zk_ensemble import LocalEnsemble
from tests.zk.helpers import Forward, Pair, make_client


@pytest.fixture(scope="session")
def ensembles(tmp_path_factory):
    a = LocalEnsemble(tmp_path_factory.mktemp("zkA"), size=3, heap_mb=192)
    b = LocalEnsemble(tmp_path_factory.mktemp("zkB"), size=3, heap_mb=192)
    try:
        a.start()
        b.start()
        a.wait_quorum()
        b.wait_quorum()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def zk(ensembles, request):
    a, b = ensembles
    for ens in (a, b):
        if any(n.proc is None for n in ens.nodes):
            ens.start()
            ens.wait_quorum()
    root = "/t-" + re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:80]
    pair = Pair(a, b, make_client(a.connect_string), make_client(b.connect_string), root)
    pair.clean()
    try:
        yield pair
    finally:
        pair.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def spellings(zk):
    """Other ways to reach ensemble A (name -> connect string); none may pass as another ensemble.
    The forwards (an alias name on another port, as a Service would present it; IPv6 loopback) are
    closed at teardown."""
    first, second = (n.client_port for n in zk.a.nodes[:2])
    forwards = [Forward(first)]
    out = {
        "reordered list": ",".join(reversed(zk.a.connect_string.split(","))),
        "localhost": f"localhost:{first}",
        "one member": f"127.0.0.1:{second}",
        "alias on a forward": f"localhost:{forwards[0].port}",
    }
    if _ipv6_loopback():
        forwards.append(Forward(first, "::1"))
        out["IPv6 loopback"] = forwards[-1].address
    elif in_ci():
        pytest.fail("no IPv6 loopback on this CI machine: the [::1] spelling cannot be tested")
    else:
        print("note: no IPv6 loopback here, the [::1] spelling is not tested")
    try:
        yield out
    finally:
        for f in forwards:
            f.close()
