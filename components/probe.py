"""The probe: `orchestrator probe` on every node (a DaemonSet) in the agents namespace, not privileged.

It reads other processes' /proc entries (host PID namespace), the node's cgroup tree (read-only) and, with
`probe.kubernetes`, this node's pods from the API server; it publishes to the API (docs/probe.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components import security as sec
from components.settings import ProbeSettings
from orchestrator.contracts import tiers

TIER = tiers.PROBE
CGROUP_ROOT = "/host/sys/fs/cgroup"
TOKEN_DIR = "/var/run/secrets/orchestrator-probe"

# Why the probe holds each privilege; checkov's findings are skipped with these reasons (README "Security").
PROBE_PRIVILEGES = {
    "CKV_K8S_17": "hostPID: the probe lists the node's processes, their cgroups, sockets and network "
                  "namespaces in /proc (it signals nothing: no write, no ptrace attach)",
    "CKV_K8S_23": "uid 0 with every capability dropped but two: non-root cannot hold the capabilities that "
                  "read other users' /proc/<pid>/fd",
    "CKV_K8S_40": "uid 0, see CKV_K8S_23",
    "CKV_K8S_25": "two capabilities added after dropping ALL: SYS_PTRACE (readlink of other users' "
                  "/proc/<pid>/fd and ns/net: socket inode to process) and DAC_READ_SEARCH (list those "
                  "directories, mode 0500 of their owner)",
}
POD_WATCH_TOKEN = {"CKV_K8S_38": "the account's token is mounted for the pod watch (probe.kubernetes): "
                                 "get/list/watch of pods, nothing else"}
# The ClusterRole: RBAC cannot restrict a read to one node's pods (the field selector only limits what the
# probe asks for), so every probe can read every pod's metadata. get/list/watch of pods and nothing else.
POD_READER_RULES = [{"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def probe_args(p: ProbeSettings, api_url: str, mesos_agent_port: int | None) -> list[str]:
    args = ["probe", "--api", api_url, "--interval", str(p.interval_seconds), "--full-every", str(p.full_every),
            "--cgroup-root", CGROUP_ROOT, "--metrics-port", str(p.metrics_port),
            "--token-file", f"{TOKEN_DIR}/token"]
    if mesos_agent_port is not None:
        # The agent runs on the host network: the node's address reaches it.
        args += ["--mesos-agent", f"http://$(NODE_IP):{mesos_agent_port}"]
    if p.kubernetes:
        args.append("--kubernetes")
    return args


@dataclass(frozen=True)
class ProbeArgs:
    platform: kx.PlatformContext
    probe: ProbeSettings
    image: str                          # the services image: the probe is `orchestrator probe`
    api_url: pulumi.Input[str]          # the API (its headless Service: every replica gets every report)
    token_secret: pulumi.Input[str]     # Secret with the key `token` (report:write), in the agents namespace
    mesos_agent_port: int | None = None  # None: Mesos tasks are not mapped to Marathon apps


class Probe(pulumi.ComponentResource):
    def __init__(self, name: str, args: ProbeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:probe:Probe", name, None, opts)
        p = args.probe
        t = kx.TierContext.of(self, TIER, name, args.platform)  # the agents namespace (host PID, hostPath)
        account = t.service_account(automount=p.kubernetes)
        self.peer = sec.Peer.of(t, {"metrics": p.metrics_port})
        self.flows = [
            sec.Flow(tiers.PROMETHEUS, TIER, "metrics", "scrape the probes' own cost"),
            sec.Flow(TIER, tiers.ORCHESTRATOR_SERVICE, "http", "probes publish their reports to the API"),
        ]
        if args.mesos_agent_port is not None:
            self.flows.append(sec.Flow(TIER, tiers.MESOS_AGENT, "http",
                                       "the probe reads its node's agent /state (Mesos task to Marathon app)"))
        if p.kubernetes:
            self.flows.append(sec.Flow(TIER, sec.API_SERVER, "https", "the probe watches its node's pods"))
        if p.kubernetes:
            role = k8s.rbac.v1.ClusterRole(
                f"{name}-pods", metadata={"name": f"{t.namespace}-{name}-pods", "labels": t.labels},
                rules=POD_READER_RULES, opts=t.opts)
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-pods", metadata={"name": f"{t.namespace}-{name}-pods", "labels": t.labels},
                role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                          "name": role.metadata["name"]},
                subjects=[{"kind": "ServiceAccount", "name": account.metadata["name"], "namespace": t.namespace}],
                opts=t.opts)

        token_volume, token_mount = kx.secret_volume("token", args.token_secret, ("token",), TOKEN_DIR)
        volumes: list[dict[str, Any]] = [
            token_volume,
            {"name": "cgroup", "host_path": {"path": "/sys/fs/cgroup", "type": "Directory"}},
        ]
        mounts = [token_mount, {"name": "cgroup", "mount_path": CGROUP_ROOT, "read_only": True}]
        container = kx.container({
            "name": "probe",
            "image": args.image,
            "command": ["orchestrator"],
            "args": pulumi.Output.from_input(args.api_url).apply(
                lambda url: probe_args(p, url, args.mesos_agent_port)),
            "env": [kx.field_env("NODE_NAME", "spec.nodeName"), kx.field_env("NODE_IP", "status.hostIP")],
            "ports": [{"name": "metrics", "container_port": p.metrics_port}],
            "liveness_probe": kx.http_probe("/healthz", "metrics", initial_delay=60, period=30),
            "readiness_probe": kx.http_probe("/metrics", "metrics", initial_delay=10, period=30),
            "volume_mounts": mounts,
            # Not privileged: uid 0 for the two capabilities below, everything else dropped, no escalation,
            # read-only root, the runtime's seccomp profile.
            "security_context": {
                "run_as_user": 0, "run_as_non_root": False, "allow_privilege_escalation": False,
                "read_only_root_filesystem": True, "seccomp_profile": {"type": "RuntimeDefault"},
                "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE", "DAC_READ_SEARCH"]},
            },
        }, p.resources, restricted=False)
        pod_spec = t.pod_spec(account, [container], uid=None, spread=None, automount=p.kubernetes,
                              # hostPID: the node's processes (the probe's /proc then shows them all).
                              host_pid=True, termination_grace_period_seconds=10,
                              security_context={"seccomp_profile": {"type": "RuntimeDefault"}},
                              priority_class_name=p.priority_class, volumes=volumes)
        if p.priority_class is None:
            del pod_spec["priority_class_name"]
        self.daemonset = k8s.apps.v1.DaemonSet(
            name,
            metadata=t.metadata(annotations=kx.checkov_skips(
                p.resources, **PROBE_PRIVILEGES, **(POD_WATCH_TOKEN if p.kubernetes else {}))),
            spec={"selector": {"match_labels": t.selector},
                  "update_strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": "10%"}},
                  "template": t.pod_template(pod_spec, kx.scrape_annotations(p.metrics_port, "/metrics"))},
            opts=t.opts)
        self.register_outputs({"daemonset": self.daemonset.metadata["name"]})
