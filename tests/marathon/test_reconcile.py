"""Apps as code: validation with file/field errors, and reconcile against the fake Marathon (which fills in
Marathon's defaults, assigns service ports and runs deployments)."""
from __future__ import annotations

import json

import pytest

from orchestrator.clients.marathon import MarathonClient
from orchestrator.errors import InputError
from orchestrator.fakes.marathon import FakeMarathon
from orchestrator.services.marathon.apps import configmap_data, load_apps, read_apps_file
from orchestrator.services.marathon.policy import AutoscalePolicy
from orchestrator.services.marathon.reconcile import HASH_LABEL, MANAGED_LABEL, Reconciler

HC = {"protocol": "HTTP", "path": "/health"}
SHAPES: list[dict] = [
    {"id": "/minimal", "cmd": "sleep 3600"},
    {"id": "/args", "args": ["/bin/server", "--port", "8080"], "cpus": 0.25, "mem": 64},
    {"id": "/shop/web", "cmd": "web", "instances": 3, "healthChecks": [HC]},
    {"id": "/shop/api/v2", "cmd": "api", "healthChecks": [{"protocol": "TCP", "portIndex": 0}]},
    {"id": "/shop/worker", "cmd": "work", "instances": 0},
    {"id": "/docker/nginx", "container": {"type": "DOCKER", "docker": {"image": "nginx:1.27.3"},
                                          "portMappings": [{"containerPort": 80, "hostPort": 0}]}},
    {"id": "/docker/priv", "container": {"type": "DOCKER", "docker": {"image": "busybox:1.37",
                                                                      "parameters": [{"key": "init", "value": "true"}]}}},
    {"id": "/mesos/ucr", "container": {"type": "MESOS", "docker": {"image": "alpine:3.21"}}, "cmd": "true"},
    {"id": "/env", "cmd": "env", "env": {"MODE": "prod", "LEVEL": "info"}},
    {"id": "/labels", "cmd": "x", "labels": {"team": "payments", "tier": "backend"}},
    {"id": "/constraints", "cmd": "x", "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"]]},
    {"id": "/ports", "cmd": "x", "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0, "name": "admin"}]},
    {"id": "/fixed-port", "cmd": "x", "portDefinitions": [{"port": 10555, "protocol": "tcp"}], "requirePorts": True},
    {"id": "/upgrade", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2}},
    {"id": "/backoff", "cmd": "x", "backoffSeconds": 5, "backoffFactor": 2.0, "maxLaunchDelaySeconds": 600},
    {"id": "/uris", "cmd": "./run", "fetch": [{"uri": "https://example.org/app.tgz", "extract": True}]},
    {"id": "/cmd-check", "cmd": "x", "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                                                       "gracePeriodSeconds": 30, "intervalSeconds": 10,
                                                       "timeoutSeconds": 5}]},
    {"id": "/deps/a.b", "cmd": "x", "dependencies": ["/shop/web"], "user": "nobody"},
    {"id": "/unreachable", "cmd": "x", "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120},
     "killSelection": "OLDEST_FIRST"},
    {"id": "/future", "cmd": "x", "someFieldOfANewerMarathon": {"enabled": True}, "cpus": 0.1, "disk": 512},
]


@pytest.fixture
def client(fake_marathon: FakeMarathon):
    with MarathonClient(fake_marathon.urls) as c:
        yield c


def actions(plan) -> list[tuple[str, str]]:
    return [(c.app, c.action) for c in plan.changes]


def test_twenty_shapes_created_then_zero_changes(fake_marathon, client):
    assert len(SHAPES) == 20 and len({s["id"] for s in SHAPES}) == 20
    first = Reconciler(client).apply(SHAPES)
    assert sorted(a for a, act in actions(first) if act == "create") == sorted(s["id"] for s in SHAPES)
    fake_marathon.advance(60)
    second = Reconciler(client).apply(SHAPES)
    assert second.changes == [] and len(second.unchanged) == 20
    live = client.list_apps_raw()
    assert all(a["labels"][MANAGED_LABEL] == "orchestrator" and a["labels"][HASH_LABEL] for a in live)
    assert next(a for a in live if a["id"] == "/ports")["portDefinitions"][0]["port"] >= 10000  # assigned


def test_autoscaler_owns_instances(fake_marathon, client):
    app = {"id": "/shop/web", "cmd": "web", "instances": 3}
    policies = {"/shop/web": AutoscalePolicy(min_instances=2, max_instances=10, metric="cpu", target=0.5)}
    Reconciler(client, policies).apply([app])
    fake_marathon.advance(30)
    client.scale("/shop/web", 7)  # the autoscaler's move
    fake_marathon.advance(60)
    plan = Reconciler(client, policies).apply([app])
    assert plan.changes == [] and fake_marathon.instances("/shop/web") == 7
    changed = Reconciler(client, policies).apply([{**app, "mem": 256}])  # a real change keeps the 7
    assert actions(changed) == [("/shop/web", "update")]
    assert json.loads([r for r in fake_marathon.requests if r["method"] == "PUT"][-1]["body"])["instances"] == 7
    fake_marathon.advance(120)
    assert fake_marathon.instances("/shop/web") == 7


def test_without_policy_instances_are_declared(fake_marathon, client):
    Reconciler(client).apply([{"id": "/fixed", "cmd": "x", "instances": 3}])
    fake_marathon.advance(30)
    client.scale("/fixed", 7)  # someone scaled it by hand: drift, put back
    fake_marathon.advance(60)
    plan = Reconciler(client).apply([{"id": "/fixed", "cmd": "x", "instances": 3}])
    assert [(c.action, c.reason, c.fields) for c in plan.changes] == [("update", "drift", ["instances"])]


def test_removed_field_is_a_spec_change_and_goes(fake_marathon, client):
    Reconciler(client).apply([{"id": "/e", "cmd": "x", "env": {"A": "1", "B": "2"}}])
    fake_marathon.advance(30)
    plan = Reconciler(client).apply([{"id": "/e", "cmd": "x", "env": {"A": "1"}}])
    assert [(c.action, c.reason) for c in plan.changes] == [("update", "spec-changed")]
    fake_marathon.advance(30)
    assert client.get_app_raw("/e")["env"] == {"A": "1"}
    assert Reconciler(client).apply([{"id": "/e", "cmd": "x", "env": {"A": "1"}}]).changes == []


def test_delete_needs_the_guard_and_only_touches_managed_apps(fake_marathon, client):
    fake_marathon.add_app({"id": "/not-ours", "cmd": "x"})
    Reconciler(client).apply([{"id": "/old", "cmd": "x"}])
    fake_marathon.advance(30)
    guarded = Reconciler(client).apply([])
    assert actions(guarded) == [("/old", "skip-delete")] and "/old" in fake_marathon.app_ids()
    deleted = Reconciler(client).apply([], allow_delete=True)
    assert actions(deleted) == [("/old", "delete")]
    fake_marathon.advance(30)
    assert fake_marathon.app_ids() == ["/not-ours"]


def test_locked_app_is_skipped_not_forced(fake_marathon, client):
    Reconciler(client).apply([{"id": "/busy", "cmd": "x", "instances": 1}])
    fake_marathon.advance(30)
    client.scale("/busy", 5)
    plan = Reconciler(client).apply([{"id": "/busy", "cmd": "y", "instances": 1}])
    assert [c.action for c in plan.changes] == ["locked"]
    assert all("force" not in r["query"] for r in fake_marathon.requests)


def test_load_apps_validates_with_file_and_field(tmp_path):
    (tmp_path / "web.yaml").write_text("id: /shop/web\ncmd: web\nhealthChecks:\n  - protocol: HTTP\n    path: health\n")
    with pytest.raises(InputError, match=r"web\.yaml: healthChecks\[0\]\.path: must start with '/'"):
        load_apps(tmp_path)
    (tmp_path / "web.yaml").write_text("apps:\n  - {id: /a, cmd: x}\n  - {id: /B, cmd: x}\n")
    with pytest.raises(InputError, match=r"web\.yaml: apps\[1\]\.id: .*segment 'B'"):
        load_apps(tmp_path)
    (tmp_path / "web.yaml").write_text("apps:\n  - {id: /a, cmd: x}\n")
    (tmp_path / "again.json").write_text('{"id": "a", "cmd": "y"}')
    with pytest.raises(InputError, match=r"app /a is already declared"):
        load_apps(tmp_path)
    (tmp_path / "again.json").write_text('{"id": "/c", "mem": 8, "cmd": "y"}')
    with pytest.raises(InputError, match=r"again\.json: mem: "):
        load_apps(tmp_path)
    (tmp_path / "again.json").write_text('{"id": "/c", "constraints": [["host", "SOMETIMES"]], "cmd": "y"}')
    with pytest.raises(InputError, match=r"constraints: .*operator"):
        load_apps(tmp_path)
    (tmp_path / "again.json").write_text('{"id": "/c"}')
    with pytest.raises(InputError, match=r"again\.json: app: an app needs 'cmd', 'args' or 'container'"):
        load_apps(tmp_path)


def test_configmap_round_trip(tmp_path):
    data = configmap_data(SHAPES)
    (tmp_path / "apps.json").write_text(data["apps.json"])
    assert read_apps_file(tmp_path / "apps.json") == sorted(SHAPES, key=lambda a: a["id"])
