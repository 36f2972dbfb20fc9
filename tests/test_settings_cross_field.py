"""Cross-field rules at render time (issue 14): what the API server or a runtime would refuse or break on
later, mid-deploy, is refused when the settings are read, with every key involved named."""
from __future__ import annotations

import json

import pytest

from components.settings import JVM_HEADROOM_MIN_MB, PlatformSettings, SettingsError, settings_from_config

SOURCE = "Pulumi.test.yaml"


def problems_of(**keys: object) -> list[str]:
    raw = {f"orchestrator:{k}": json.dumps(v) for k, v in keys.items()}
    with pytest.raises(SettingsError) as info:
        settings_from_config(raw, SOURCE)
    return info.value.problems


def load(**keys: object) -> PlatformSettings:
    return settings_from_config({f"orchestrator:{k}": json.dumps(v) for k, v in keys.items()}, SOURCE)


def test_memory_request_above_limit_names_both_keys():
    [problem] = problems_of(zookeeper={"heap_mb": 256, "resources": {"memory_request": "2Gi", "memory_limit": "1Gi"}})
    assert problem.startswith("orchestrator:zookeeper.resources.memory_request: 2Gi is above "
                              "orchestrator:zookeeper.resources.memory_limit 1Gi")
    # Units are compared, not strings: 1024Mi == 1Gi is fine, 1025Mi is not.
    load(zookeeper={"resources": {"memory_request": "1024Mi", "memory_limit": "1Gi"}})
    assert problems_of(zookeeper={"resources": {"memory_request": "1025Mi", "memory_limit": "1Gi"}})


def test_cpu_request_above_limit_in_a_nested_section():
    [problem] = problems_of(service={"resources": {"cpu_request": "1500m", "cpu_limit": "1"}})
    assert problem.startswith("orchestrator:service.resources.cpu_request: 1500m is above "
                              "orchestrator:service.resources.cpu_limit 1")
    load(service={"resources": {"cpu_request": "1", "cpu_limit": "1000m"}})
    load(service={"resources": {"cpu_request": "4"}})  # no limit: nothing to exceed


@pytest.mark.parametrize("section,heap,limit,ok", [
    ("zookeeper", 768, "1Gi", True),     # exactly 256 MiB (= a quarter) left
    ("zookeeper", 769, "1Gi", False),
    ("zookeeper", 8192, "512Mi", False),  # the red-team case: OOM-killed at start
    ("marathon", 1536, "2Gi", True),      # a quarter (512 MiB) left
    ("marathon", 1600, "2Gi", False),
    ("marathon", 256, "512Mi", True),     # small limits: the 256 MiB floor decides
    ("marathon", 300, "512Mi", False),
])
def test_jvm_heap_leaves_headroom_below_the_limit(section, heap, limit, ok):
    keys = {section: {"heap_mb": heap, "resources": {"memory_request": "256Mi", "memory_limit": limit}}}
    if ok:
        load(**keys)
        return
    [problem] = problems_of(**keys)
    assert problem.startswith(f"orchestrator:{section}.heap_mb: {heap} MiB leaves")
    assert f"orchestrator:{section}.resources.memory_limit {limit}" in problem
    assert f"at least {JVM_HEADROOM_MIN_MB} MiB" in problem and "raise memory_limit to" in problem


def test_the_suggested_fix_passes():
    [problem] = problems_of(marathon={"heap_mb": 1600, "resources": {"memory_limit": "2Gi"}})
    suggested = problem.rsplit("raise memory_limit to ", 1)[1]
    load(marathon={"heap_mb": 1600, "resources": {"memory_limit": suggested}})
    lower = int(problem.split("lower heap_mb to ", 1)[1].split()[0])
    load(marathon={"heap_mb": lower, "resources": {"memory_limit": "2Gi"}})


def test_ports_unique_within_a_pod_and_its_services():
    [problem] = problems_of(zookeeper={"client_port": 2888})
    assert problem == ("orchestrator:zookeeper.peer_port: 2888 is also orchestrator:zookeeper.client_port: "
                       "the ports of one pod and of its Services must be distinct")
    [problem] = problems_of(marathon={"libprocess_port": 8080})
    assert "marathon.libprocess_port: 8080 is also orchestrator:marathon.port" in problem
    # The same number in two different pods is fine; zk_sync.source_port is the old ensemble's, not its pod's.
    load(service={"port": 9090}, zk_sync={"metrics_port": 2181})


def test_zk_sync_source_ports_match_the_egress_policy():
    [problem] = problems_of(zk_sync={"enabled": True, "source": "old-a:2181,old-b:2182/chroot"})
    assert problem.startswith("orchestrator:zk_sync.source: ports [2181, 2182] differ from "
                              "orchestrator:zk_sync.source_port 2181")
    load(zk_sync={"enabled": True, "source": "old-a:2182,old-b:2182", "source_port": 2182})


def test_mesos_quorum_override_between_majority_and_masters():
    assert load(mesos_master={"replicas": 3, "quorum_override": 3}).mesos_master.quorum == 3
    assert load(mesos_master={"replicas": 5}).mesos_master.quorum == 3
    for replicas, override in ((3, 1), (3, 4)):
        [problem] = problems_of(mesos_master={"replicas": replicas, "quorum_override": override})
        assert problem.startswith(f"orchestrator:mesos_master.quorum_override: {override} with "
                                  f"orchestrator:mesos_master.replicas {replicas}")


@pytest.mark.parametrize("key,value", [("work_dir", "/"), ("work_dir", "/etc/mesos"), ("work_dir", "/var"),
                                       ("work_dir", "//"), ("work_dir", "/var/lib/mesos/../../../etc"),
                                       ("docker_socket", "/etc"), ("docker_socket", "/proc/1/root"),
                                       ("work_dir", "/var/lib/kubelet/pods")])
def test_agent_host_paths_are_not_system_directories(key, value):
    [problem] = problems_of(mesos_agent={key: value})
    assert problem.startswith(f"orchestrator:mesos_agent.{key}:") and repr(value) in problem


def test_agent_host_paths_of_their_own_pass():
    s = load(mesos_agent={"work_dir": "/var/lib/mesos/agent-b", "docker_socket": "/var/run/docker.sock"})
    assert s.mesos_agent.work_dir == "/var/lib/mesos/agent-b"


def test_every_broken_rule_is_reported_at_once():
    problems = problems_of(zookeeper={"client_port": 2888, "heap_mb": 4096},
                           marathon={"resources": {"memory_request": "4Gi", "memory_limit": "3Gi"}})
    keys = [p.split(":", 2)[1] for p in problems]
    assert keys == ["marathon.resources.memory_request", "zookeeper.heap_mb", "zookeeper.peer_port"]
    assert all(p.startswith("orchestrator:") for p in problems)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_pass(stack):
    from orchestrator.toolchain.render import PROJECT_DIR, load_stack_config

    config, secret, _ = load_stack_config(stack, PROJECT_DIR)
    settings_from_config(config, f"Pulumi.{stack}.yaml", set(secret))
