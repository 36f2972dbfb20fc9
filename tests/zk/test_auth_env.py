"""In the platform the engine's ZooKeeper credentials come from a Secret as ORCHESTRATOR_ZK_AUTH:
with them it copies znodes that only the digest user may read; without them it cannot."""
import os
import subprocess
import sys

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from tests.support.zk_ensemble import LocalEnsemble


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory):
    with LocalEnsemble(tmp_path_factory.mktemp("a"), size=1) as a, \
            LocalEnsemble(tmp_path_factory.mktemp("b"), size=1) as b:
        yield a, b


def copy(a, b, env_auth=None):
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_ZK_AUTH"}
    if env_auth is not None:
        env["ORCHESTRATOR_ZK_AUTH"] = env_auth
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "zk", "copy", "--source", a.connect_string,
                           "--target", b.connect_string, "--path", "/mesos", "--connect-timeout", "10"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_credentials_from_the_environment(ensembles):
    a, b = ensembles
    owner = KazooClient(hosts=a.connect_string, auth_data=[("digest", "mesos:pw")])
    owner.start(timeout=15)
    try:
        owner.create("/mesos", b"", acl=[make_digest_acl("mesos", "pw", all=True)])
        owner.create("/mesos/leader", b"master-0", acl=[make_digest_acl("mesos", "pw", all=True)])
    finally:
        owner.stop()

    denied = copy(a, b)
    assert denied.returncode == 2 and "no permission to read /mesos" in denied.stderr, denied.stderr
    assert "pw" not in denied.stdout + denied.stderr

    done = copy(a, b, "digest:mesos:pw\n")
    assert done.returncode == 0, done.stdout + done.stderr
    reader = KazooClient(hosts=b.connect_string, auth_data=[("digest", "mesos:pw")])
    reader.start(timeout=15)
    try:
        data, _ = reader.get("/mesos/leader")
        acl, _ = reader.get_acls("/mesos/leader")
    finally:
        reader.stop()
    assert data == b"master-0"
    assert [(e.id.scheme, e.id.id) for e in acl] == [("digest", make_digest_acl("mesos", "pw").id.id)]
