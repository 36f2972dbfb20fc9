"""Typed settings: defaults, derived values, and a clear error naming file and key for bad input."""
import json

import pytest
from pydantic import ValidationError

from components.settings import PlatformSettings, SettingsError, settings_from_config

SOURCE = "Pulumi.test.yaml"


def load(**keys):
    raw = {f"orchestrator:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in keys.items()}
    return settings_from_config(raw, SOURCE)


def error_of(**keys) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        load(**keys)
    return info.value


def test_defaults_are_a_valid_ha_platform():
    s = load()
    assert (s.zookeeper.replicas, s.mesos_master.replicas, s.marathon.replicas) == (3, 3, 3)
    assert s.mesos_master.quorum == 2
    assert s.agents_namespace == "orchestrator-agents"


@pytest.mark.parametrize("masters,quorum", [(1, 1), (3, 2), (5, 3), (7, 4)])
def test_mesos_quorum_is_a_majority(masters, quorum):
    assert load(mesos_master={"replicas": masters}).mesos_master.quorum == quorum


def test_values_arrive_as_the_cli_sends_them():
    # Plain strings stay strings, structured values are JSON, booleans are "true"/"false".
    s = settings_from_config({"orchestrator:namespace": "team-a", "orchestrator:production": "true",
                              "orchestrator:zookeeper": '{"replicas": 5}', "kubernetes:context": "kind-x",
                              "orchestrator:security": '{"auth": false}'}, SOURCE)
    assert (s.namespace, s.production, s.zookeeper.replicas) == ("team-a", True, 5)


@pytest.mark.parametrize("keys,key,words", [
    ({"zookeper": {"replicas": 3}}, "orchestrator:zookeper", "unknown key"),
    ({"zookeeper": {"replcas": 3}}, "orchestrator:zookeeper.replcas", "unknown key"),
    ({"zookeeper": {"replicas": 4}}, "orchestrator:zookeeper.replicas", "odd"),
    ({"production": True, "zookeeper": {"replicas": 1}}, "orchestrator:zookeeper.replicas", "at least 3"),
    ({"mesos_master": {"replicas": 2}}, "orchestrator:mesos_master.replicas", "odd"),
    ({"production": True, "marathon": {"replicas": 1}}, "orchestrator:marathon.replicas", "at least 2"),
    ({"marathon": {"image": "mesosphere/marathon"}}, "orchestrator:marathon.image", "no tag"),
    ({"marathon": {"image": "mesosphere/marathon:latest"}}, "orchestrator:marathon.image", "latest"),
    ({"zookeeper": {"resources": {"cpu_request": "lots"}}}, "orchestrator:zookeeper.resources.cpu_request", "CPU"),
    ({"marathon": {"resources": {"memory_limit": "2GB"}}}, "orchestrator:marathon.resources.memory_limit", "memory"),
    ({"zookeeper": {"storage": "0Gi"}}, "orchestrator:zookeeper.storage", "storage"),
    ({"zookeeper": {"client_port": 0}}, "orchestrator:zookeeper.client_port", "greater than or equal to 1"),
    ({"marathon": {"port": 70000}}, "orchestrator:marathon.port", "less than or equal to 65535"),
    ({"mesos_agent": {"containerizers": ["rkt"]}}, "orchestrator:mesos_agent.containerizers[0]", "docker"),
    ({"namespace": "Bad_Name"}, "orchestrator:namespace", "DNS-1123"),
    ({"monitoring": {"retention": "15 days"}}, "orchestrator:monitoring.retention", "duration"),
])
def test_bad_config_names_file_and_key(keys, key, words):
    err = error_of(**keys)
    message = str(err)
    assert message.startswith(f"{SOURCE}: {key}:"), message
    assert words in message


def test_every_problem_is_reported_at_once():
    err = error_of(zookeeper={"replcas": 3, "storage": "big"}, marathon={"port": 0})
    assert len(err.problems) == 3, err.problems


def test_settings_are_frozen():
    s = PlatformSettings()
    with pytest.raises(ValidationError, match="frozen"):
        s.zookeeper.replicas = 5  # type: ignore[misc]
