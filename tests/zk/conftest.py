"""Two real 3-node ZooKeeper ensembles (A = source, B = target) on loopback, shared by the session.

Each test works under its own root path and gets fresh clients; nodes a test stops are restarted and
the quorum awaited before the next test, so one fault test cannot leak into another.
"""
from __future__ import annotations

import re

import pytest

from tests.support.zk_ensemble import LocalEnsemble
from tests.zk.helpers import Pair, make_client


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
