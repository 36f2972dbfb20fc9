"""The ZooKeeper superuser (reconfig) goes through the credentials tier: from the optional secret config key
`zookeeper_superuser_password`, a Secret holding its digest (for the servers, mounted as a file) and the
password (for `orchestrator zk reconfig --superuser-file`); never in the render in clear, never a JVM flag."""
from __future__ import annotations

import json

from components import zookeeper as zkc
from components.security import ZK_SUPERUSER_SECRET, zookeeper_digest
from components.settings import SECRET_KEYS, ZK_SUPERUSER_PASSWORD_KEY
from orchestrator.toolchain.render import REDACTED, SCOPE_CONFIG, build_manifests, load_stack_config, run_program
from tests.support.harness import one
from tests.support.statefulset_roll import super_digest

PASSWORD = "Sup3r-user-secret-7Qz"


def render_prod(with_superuser: bool):
    config, secret_keys, _ = load_stack_config("prod")
    for key in SECRET_KEYS:
        config[f"orchestrator:{key}"] = f"value-of-{key}"
    secret_keys = list(secret_keys)
    config[SCOPE_CONFIG] = "tree"  # the whole tree, the ZooKeeper tier included (prod is GitOps-delivered)
    if with_superuser:
        config[f"orchestrator:{ZK_SUPERUSER_PASSWORD_KEY}"] = PASSWORD
        secret_keys.append(f"orchestrator:{ZK_SUPERUSER_PASSWORD_KEY}")
    return build_manifests(run_program("prod", config, secret_keys))


def zookeeper_container(result):
    sts = one(result, "StatefulSet", "zookeeper")
    return sts["spec"]["template"]["spec"], sts["spec"]["template"]["spec"]["containers"][0]


def test_superuser_secret_holds_the_digest_and_the_servers_read_it_as_a_file():
    result = render_prod(with_superuser=True)
    secret = one(result, "Secret", ZK_SUPERUSER_SECRET)
    assert set(secret["stringData"]) == {"super-digest", "password"}
    assert set(secret["stringData"].values()) == {REDACTED}
    raw = next(r for r in result.registrations if r.name == ZK_SUPERUSER_SECRET).inputs["stringData"]
    assert zookeeper_digest("super", PASSWORD) in json.dumps(raw)
    assert zookeeper_digest("super", PASSWORD) == super_digest(PASSWORD)  # what the real-ZooKeeper tests use
    pod, container = zookeeper_container(result)
    volume = next(v for v in pod["volumes"] if v["name"] == "superuser")
    assert volume["secret"]["secretName"] == ZK_SUPERUSER_SECRET
    assert [i["key"] for i in volume["secret"]["items"]] == ["super-digest"], "the servers never get the password"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ZK_SUPERUSER_FILE"] == f"{zkc.SUPERUSER_DIR}/{zkc.SUPER_DIGEST_KEY}"
    text = json.dumps([m for m in result.manifests])
    assert PASSWORD not in text and "superDigest" not in json.dumps(container["command"][:2])
    assert not any("-Dzookeeper" in a for a in container["command"] + container.get("args", []))


def test_without_the_key_there_is_no_superuser():
    result = render_prod(with_superuser=False)
    assert not [m for m in result.manifests if m["kind"] == "Secret" and m["metadata"]["name"] == ZK_SUPERUSER_SECRET]
    pod, container = zookeeper_container(result)
    assert "superuser" not in {v["name"] for v in pod["volumes"]}
    assert "ZK_SUPERUSER_FILE" not in {e["name"] for e in container["env"]}
