"""Mesos agents: a DaemonSet on the host network, in a namespace of its own (it needs host privileges)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components import security as sec
from components.settings import MesosAgentSettings
from orchestrator.contracts import tiers

TIER = tiers.MESOS_AGENT
AUTH_DIR = sec.MESOS_AUTH_DIR

# Why the agent holds each privilege (README "Security"); checkov's findings are skipped with these reasons.
LAUNCHER = "the agent is a container launcher: it creates cgroups, mounts and namespaces for tasks"
AGENT_PRIVILEGES = {
    "CKV_K8S_16": f"privileged: {LAUNCHER}",
    "CKV_K8S_17": "hostPID: the agent must see, signal and reap the task processes it starts on the node",
    "CKV_K8S_19": "hostNetwork: tasks listen on node ports and masters reach the agent at the node address",
    "CKV_K8S_20": f"privilege escalation is implied by privileged: {LAUNCHER}",
    "CKV_K8S_22": "writable root filesystem: the agent's launcher and fetcher write outside its work dir",
    "CKV_K8S_23": f"root: {LAUNCHER}",
    "CKV_K8S_26": "hostPort 5051: the agent's API at the node address, as registered with the masters",
    "CKV_K8S_28": f"NET_RAW comes with privileged: {LAUNCHER}",
    "CKV_K8S_29": "the privileged launcher cannot take a restricted security context",
    "CKV_K8S_31": "seccomp does not apply to privileged containers (the task containers get their own)",
    "CKV_K8S_37": f"all capabilities come with privileged: {LAUNCHER}",
    "CKV_K8S_40": f"uid 0: {LAUNCHER}",
}
DOCKER_SOCKET = {"CKV_K8S_27": "the docker containerizer drives the node's Docker daemon through its socket "
                               "(choose containerizers: [mesos] to drop it)"}


def agent_flags(platform: kx.PlatformContext, a: MesosAgentSettings, master_zk_url: str) -> list[str]:
    flags = [
        f"--master={master_zk_url}",
        f"--work_dir={a.work_dir}",
        f"--port={a.port}",
        f"--containerizers={','.join(a.containerizers)}",
        # posix launcher + no systemd: the agent runs inside a container, not under the node's systemd.
        "--launcher=posix",
        "--systemd_enable_support=false",
        # Node names are not always resolvable from pods; the node IP always is.
        "--ip=$(HOST_IP)",
        "--hostname=$(HOST_IP)",
        # Tasks run as the container's user; the agent image has no accounts of the frameworks' users.
        "--switch_user=false",
    ]
    if platform.auth_enabled:
        # Registers with the masters as the `agent` principal (CRAM-MD5).
        flags.append(f"--credential={AUTH_DIR}/credential")
    if "docker" in a.containerizers:
        # Tells the docker containerizer the agent itself is a container, so executors run in containers too.
        flags.append(f"--docker_mesos_image={a.image}")
    return flags


@dataclass(frozen=True)
class MesosAgentsArgs:
    platform: kx.PlatformContext
    mesos_agent: MesosAgentSettings
    master_zk_url: pulumi.Input[str]  # zk://…/mesos, from the masters
    auth_secret: pulumi.Input[str] | None = None  # Secret with the file `credential`


class MesosAgents(pulumi.ComponentResource):
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: MesosAgentsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:mesos_agent:MesosAgents", name, None, opts)
        platform, a = args.platform, args.mesos_agent
        t = kx.TierContext.of(self, TIER, name, platform)  # the agents namespace (registry: namespace role)

        mounts: list[dict[str, Any]] = [{"name": "work", "mount_path": a.work_dir},
                                        {"name": "cgroup", "mount_path": "/sys/fs/cgroup"}]
        volumes: list[dict[str, Any]] = [
            # Same path inside and outside: the docker containerizer mounts sandboxes from the host.
            {"name": "work", "host_path": {"path": a.work_dir, "type": "DirectoryOrCreate"}},
            {"name": "cgroup", "host_path": {"path": "/sys/fs/cgroup", "type": "Directory"}},
        ]
        account = t.service_account()
        self.peer = sec.Peer.of(t, {"http": a.port}, host_network=True)
        self.flows = [sec.Flow(tiers.MESOS_MASTER, TIER, "http", "the master launches tasks and pings agents")]
        if args.auth_secret is not None:
            volume, mount = kx.secret_volume("auth", args.auth_secret, ("credential",), AUTH_DIR)
            volumes.append(volume)
            mounts.append(mount)
        if "docker" in a.containerizers:
            mounts.append({"name": "docker-socket", "mount_path": "/var/run/docker.sock"})
            volumes.append({"name": "docker-socket", "host_path": {"path": a.docker_socket, "type": "Socket"}})

        container = kx.container({
            "name": "mesos-agent",
            "image": a.image,
            "args": pulumi.Output.from_input(args.master_zk_url).apply(lambda url: agent_flags(platform, a, url)),
            "env": [kx.field_env("HOST_IP", "status.hostIP")],
            "ports": [{"name": "http", "container_port": a.port, "host_port": a.port}],
            "liveness_probe": kx.http_probe("/slave(1)/health", "http", initial_delay=30),
            "readiness_probe": kx.http_probe("/slave(1)/health", "http", initial_delay=10),
            # Privileged: launching containers needs cgroup writes, mounts and namespaces on the node.
            # This is the platform's one privileged workload, alone in its namespace.
            "security_context": {"privileged": True},
            "volume_mounts": mounts,
        }, a.resources, restricted=False)
        # No anti-affinity (a DaemonSet) and no restricted pod context (the launcher is privileged).
        pod_spec = t.pod_spec(
            account, [container], uid=None, spread=None,
            # Host network: frameworks reach executors on node ports, and masters reach the agent
            # at the node IP it advertises.
            host_network=True,
            # Without this, a host-network pod resolves with the node's resolver and cannot find
            # the ZooKeeper and master Services.
            dns_policy="ClusterFirstWithHostNet",
            # Host PID: the agent must see and reap the task processes it launches.
            host_pid=True,
            termination_grace_period_seconds=60,
            volumes=volumes)
        if a.node_selector:
            pod_spec["node_selector"] = dict(a.node_selector)
        skips = {**AGENT_PRIVILEGES, **(DOCKER_SOCKET if "docker" in a.containerizers else {})}
        self.daemonset = k8s.apps.v1.DaemonSet(
            name,
            metadata=t.metadata(annotations=kx.checkov_skips(a.resources, **skips)),
            spec={"selector": {"match_labels": t.selector},
                  "update_strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 1}},
                  "template": {"metadata": {"labels": t.labels}, "spec": pod_spec}},
            opts=t.opts)
        self.namespace = self.daemonset.metadata["namespace"]
        self.register_outputs({"namespace": self.namespace})
