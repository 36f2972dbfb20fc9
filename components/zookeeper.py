"""ZooKeeper ensemble: StatefulSet with numeric myids, FQDN server list, PDB, metrics on port 7000.

Membership changes go through ZooKeeper's dynamic reconfiguration (docs/quorum-changes.md): the rendered
server list only seeds a member's first start; afterwards ZooKeeper's own view (its dynamic config file
on the member's volume) wins, so rolling a new list can never give two groups two different majorities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.security import Flow, Peer
from components.settings import ZooKeeperSettings
from orchestrator.contracts import tiers

TIER = tiers.ZOOKEEPER
UID = 1000  # the `zookeeper` user of the official image
DATA_DIR = "/data"
CONF_DIR = "/conf"  # the image's own (logback.xml)
TEMPLATE_DIR = "/conf-template"  # the ConfigMap: the rendered zoo.cfg
# The zoo.cfg the server runs, on the member's volume: ZooKeeper rewrites it (and writes its dynamic
# config files next to it) on every reconfiguration.
LIVE_CONF = f"{DATA_DIR}/conf/zoo.cfg"
SUPERUSER_DIR = "/etc/zookeeper-superuser"
TLS_DIR = "/etc/zookeeper-tls"  # the TLS Secret: tls.crt, tls.key, ca.crt (PEM)
# The PEM keystore (key + certificate) ZooKeeper reads, assembled at start in a memory-backed emptyDir.
# PEM needs no keystore password; an encrypted key's password would come from a file
# (ssl.keyStore.passwordPath), never from a JVM flag.
TLS_KEYSTORE = "/run/zookeeper-tls/keystore.pem"


# Where the TLS-capable clients (sync engine, API, scaler, backup) mount the TLS Secret's ca.crt: the CA
# only, never the members' key. orchestrator/services/zk/tls.py reads this directory's layout.
CLIENT_TLS_DIR = "/etc/zookeeper-client-tls"


@dataclass(frozen=True)
class ClientTls:
    """How a tier whose client speaks TLS reaches ZooKeeper: with `zookeeper.tls_secret` set, the secure
    client port (flow `client-tls`) with the Secret's ca.crt mounted; else the plain port, as before."""

    secret: str | None  # zookeeper.tls_secret
    external: bool = True  # issued outside the render (cert-manager); False: the program generates it

    @classmethod
    def of(cls, zk: ZooKeeperSettings) -> ClientTls:
        return cls(zk.tls_secret, zk.tls_certificates == "external")

    @property
    def port(self) -> str:
        """The ZooKeeper port name the tier's flow opens."""
        return "client-tls" if self.secret else "client"

    def args(self, option: str) -> list[str]:
        """The command-line option that turns the client's TLS on (a directory, never a secret value)."""
        return [option, CLIENT_TLS_DIR] if self.secret else []

    def volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(volumes, volume mounts) for the pod: the CA bundle alone, read-only."""
        if not self.secret:
            return [], []
        volume, mount = kx.secret_volume("zookeeper-ca", self.secret, ("ca.crt",), CLIENT_TLS_DIR)
        return [volume], [mount]

    def annotations(self) -> dict[str, str]:
        """Pod template annotations: a Secret issued outside the render (cert-manager or the operator) is
        declared so; a generated one is rendered by the credentials tier like every other Secret."""
        return {kx.EXTERNAL_SECRETS: self.secret} if self.secret and self.external else {}


NO_TLS = ClientTls(None)


def server_hosts(platform: kx.PlatformContext, replicas: int, statefulset: str, headless: str) -> list[str]:
    """Stable per-pod DNS names, ordinal order: `<sts>-<i>.<headless>.<ns>.svc.<domain>`."""
    return [f"{statefulset}-{i}.{platform.service_fqdn(headless)}" for i in range(replicas)]


def connect_string(hosts: list[str], port: int, chroot: str = "") -> str:
    return ",".join(f"{h}:{port}" for h in hosts) + chroot


def server_line(myid: int, host: str, zk: ZooKeeperSettings) -> str:
    """One member in ZooKeeper's dynamic-config form (what `orchestrator zk reconfig --add` takes)."""
    return f"server.{myid}={host}:{zk.peer_port}:{zk.election_port}:participant;{zk.client_port}"


def tls_cfg(zk: ZooKeeperSettings, tls_dir: str = TLS_DIR, keystore: str = TLS_KEYSTORE) -> list[str]:
    """Quorum TLS (mutual, the default for quorum) and a secure client port (server-authenticated: clients
    keep authenticating with their digest credentials). Netty is ZooKeeper's only TLS transport."""
    if zk.tls_secret is None:
        return []
    # Port unification lets a member accept plain and TLS quorum connections while the others switch.
    lines = [f"sslQuorum={'false' if zk.tls_quorum == 'accept' else 'true'}",
             f"portUnification={'false' if zk.tls_quorum == 'require' else 'true'}",
             "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
             f"secureClientPort={zk.secure_client_port}", "ssl.clientAuth=none"]
    for prefix in ("ssl.quorum.", "ssl."):
        lines += [f"{prefix}keyStore.location={keystore}", f"{prefix}keyStore.type=PEM",
                  f"{prefix}trustStore.location={tls_dir}/ca.crt", f"{prefix}trustStore.type=PEM"]
    return lines


def zoo_cfg(zk: ZooKeeperSettings, hosts: list[str], data_dir: str = DATA_DIR, tls_dir: str = TLS_DIR,
            keystore: str = TLS_KEYSTORE) -> str:
    """The complete zoo.cfg a member starts from. Pure: the tests start real ensembles from this text
    (remapped to loopback).

    `server.N` uses myid N = ordinal + 1 (ZooKeeper ids are numeric and must be ≥ 1). The client port is
    part of each server line (the dynamic-config form), not a static `clientPort`.
    """
    lines = [
        f"tickTime={zk.tick_time_ms}",
        f"initLimit={zk.init_limit}",
        f"syncLimit={zk.sync_limit}",
        f"dataDir={data_dir}",
        f"maxClientCnxns={zk.max_client_cnxns}",
        f"autopurge.snapRetainCount={zk.autopurge_snap_retain_count}",
        f"autopurge.purgeInterval={zk.autopurge_purge_interval_hours}",
        # Probes and operators use these; everything else stays off (4lw are disabled by default).
        "4lw.commands.whitelist=ruok,srvr,mntr",
        # The Jetty admin server would listen on 8080 on every interface; nothing here uses it.
        "admin.enableServer=false",
        # Membership changes one server at a time through the reconfig API, by the superuser only
        # (`orchestrator zk reconfig`); a rolled static list could elect two leaders (tests/test_zk_quorum_roll.py).
        "reconfigEnabled=true",
        # A single server runs as a one-member quorum, so the dev ensemble can grow by reconfig too.
        "standaloneEnabled=false",
        # A pod's own FQDN only resolves once it is published; bind quorum ports on all addresses.
        "quorumListenOnAllIPs=true",
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        f"metricsProvider.httpPort={zk.metrics_port}",
        "metricsProvider.exportJvmInfo=true",
    ]
    lines += tls_cfg(zk, tls_dir, keystore)
    lines += [server_line(i + 1, h, zk) for i, h in enumerate(hosts)]
    return "\n".join(lines) + "\n"


# myid = ordinal + 1, taken from the pod's hostname `<sts>-<ordinal>`.
MYID_SCRIPT = 'ordinal="${HOSTNAME##*-}"; echo $((ordinal + 1)) > "$ZOO_DATA_DIR/myid"'
# The live zoo.cfg ($ZK_LIVE_CONF) from the rendered one ($ZK_TEMPLATE), at every start. A member that
# already has a dynamic config file (ZooKeeper wrote it: the member has run before) keeps it and takes
# only the static settings from the template, so a rendered server list never overrides the ensemble's
# own view. The superuser digest (only the hash, from the Secret's file; never a JVM flag) becomes a
# config line, which ZooKeeper turns into its system property.
PREPARE_SCRIPT = r"""set -eu
mkdir -p "$(dirname "$ZK_LIVE_CONF")"
umask 077
dyn=""
if [ -f "$ZK_LIVE_CONF" ]; then dyn=$(sed -n 's/^dynamicConfigFile=//p' "$ZK_LIVE_CONF" | tail -n 1); fi
if [ -n "$dyn" ] && [ -s "$dyn" ]; then
  grep -v -e '^server\.' -e '^dynamicConfigFile=' "$ZK_TEMPLATE" > "$ZK_LIVE_CONF.next"
  echo "dynamicConfigFile=$dyn" >> "$ZK_LIVE_CONF.next"
else
  cp "$ZK_TEMPLATE" "$ZK_LIVE_CONF.next"
fi
if [ -n "${ZK_SUPERUSER_FILE:-}" ]; then
  printf 'DigestAuthenticationProvider.superDigest=%s\n' "$(cat "$ZK_SUPERUSER_FILE")" >> "$ZK_LIVE_CONF.next"
fi
mv "$ZK_LIVE_CONF.next" "$ZK_LIVE_CONF"
if [ -n "${ZK_TLS_DIR:-}" ]; then
  mkdir -p "$(dirname "$ZK_TLS_KEYSTORE")"
  cat "$ZK_TLS_DIR/tls.key" "$ZK_TLS_DIR/tls.crt" > "$ZK_TLS_KEYSTORE"
fi
"""
# 4-letter word over bash's /dev/tcp, read until the server closes: no netcat needed in the image, and
# no race where the client exits before the reply arrives (seen with `echo srvr | nc`).
_FOUR_LETTER = "exec 3<>/dev/tcp/127.0.0.1/{port} && printf %s >&3 && timeout 3 cat <&3"
# Liveness: the server answers at all. Readiness: it has joined a quorum (or runs standalone).
RUOK_SCRIPT = 'test "$(' + _FOUR_LETTER % "ruok" + ')" = imok'
SRVR_SCRIPT = _FOUR_LETTER % "srvr" + ' | grep -qE "^Mode: (leader|follower|standalone)"'


# What the container runs before the server (the loopback harness runs exactly this too).
START_SCRIPT = MYID_SCRIPT + "\n" + PREPARE_SCRIPT
SUPER_DIGEST_KEY = "super-digest"  # `super:<base64 sha1>` (what the server needs: a hash, not the password)


@dataclass(frozen=True)
class ZooKeeperEnsembleArgs:
    platform: kx.PlatformContext
    zookeeper: ZooKeeperSettings
    # The credentials tier's Secret with the superuser digest (SUPER_DIGEST_KEY), which reconfig needs.
    # None: no superuser, and ZooKeeper refuses every reconfiguration (NoAuth).
    superuser_secret: pulumi.Input[str] | None = None


class ZooKeeperEnsemble(pulumi.ComponentResource):
    connect_string: pulumi.Output[str]
    client_service: pulumi.Output[str]
    # What clients that speak TLS use: the secure client port with `tls_secret`, else the plain one.
    tls_connect_string: pulumi.Output[str]

    def __init__(self, name: str, args: ZooKeeperEnsembleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:zookeeper:ZooKeeperEnsemble", name, None, opts)
        platform, zk = args.platform, args.zookeeper
        t = kx.TierContext.of(self, TIER, name, platform)
        hosts = server_hosts(platform, zk.replicas, name, f"{name}-headless")
        cfg = zoo_cfg(zk, hosts)

        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=t.metadata(f"{name}-config"),
                                       data={"zoo.cfg": cfg}, opts=t.opts)
        tls = zk.tls_secret is not None
        client_ports = [kx.service_port("client", zk.client_port)]
        if tls:
            client_ports.append(kx.service_port("client-tls", zk.secure_client_port))
        peer_ports = [*client_ports, kx.service_port("peer", zk.peer_port),
                      kx.service_port("election", zk.election_port), kx.service_port("metrics", zk.metrics_port)]
        self.headless = t.headless_service(peer_ports)
        self.client = t.cluster_service(client_ports, suffix="-client")
        self.pdb = t.disruption_budget()
        account = t.service_account()
        self.peer = Peer.of(t, {"client": zk.client_port, "peer": zk.peer_port, "election": zk.election_port,
                                "metrics": zk.metrics_port,
                                **({"client-tls": zk.secure_client_port} if tls else {})})
        self.flows = [
            Flow(TIER, TIER, "peer", "ZooKeeper followers sync with the leader"),
            Flow(TIER, TIER, "election", "ZooKeeper leader election"),
            # Everyone handed the ZooKeeper connect string talks to the client port.
            *[Flow(t, TIER, "client", f"{t.id} uses ZooKeeper")
              for t in (tiers.MESOS_MASTER, tiers.MESOS_AGENT, tiers.MARATHON)],
            Flow(tiers.PROMETHEUS, TIER, "metrics", "scrape ZooKeeper"),
        ]

        env = [{"name": "ZOO_DATA_DIR", "value": DATA_DIR},
               {"name": "ZOO_CONF_DIR", "value": CONF_DIR},
               {"name": "ZOOCFGDIR", "value": CONF_DIR},
               {"name": "ZOO_LOG_DIR", "value": "/logs"},
               {"name": "ZK_SERVER_HEAP", "value": str(zk.heap_mb)},
               {"name": "ZK_TEMPLATE", "value": f"{TEMPLATE_DIR}/zoo.cfg"},
               {"name": "ZK_LIVE_CONF", "value": LIVE_CONF}]
        volumes: list[dict[str, Any]] = [{"name": "config", "config_map": {"name": config.metadata["name"]}},
                                         {"name": "logs", "empty_dir": {}},
                                         {"name": "tmp", "empty_dir": {}}]
        mounts = [{"name": "data", "mount_path": DATA_DIR},
                  {"name": "config", "mount_path": TEMPLATE_DIR, "read_only": True},
                  {"name": "logs", "mount_path": "/logs"},
                  {"name": "tmp", "mount_path": "/tmp"}]
        if args.superuser_secret is not None:
            volume, mount = kx.secret_volume("superuser", args.superuser_secret, (SUPER_DIGEST_KEY,), SUPERUSER_DIR)
            volumes.append(volume)
            mounts.append(mount)
            env.append({"name": "ZK_SUPERUSER_FILE", "value": f"{SUPERUSER_DIR}/{SUPER_DIGEST_KEY}"})
        if zk.tls_secret is not None:
            volume, mount = kx.secret_volume("tls", zk.tls_secret, ("tls.crt", "tls.key", "ca.crt"), TLS_DIR)
            volumes += [volume, {"name": "tls-work", "empty_dir": {"medium": "Memory", "size_limit": "1Mi"}}]
            mounts += [mount, {"name": "tls-work", "mount_path": TLS_KEYSTORE.rsplit("/", 1)[0]}]
            env += [{"name": "ZK_TLS_DIR", "value": TLS_DIR}, {"name": "ZK_TLS_KEYSTORE", "value": TLS_KEYSTORE}]
        container = kx.container({
            "name": "zookeeper",
            "image": zk.image,
            # The live config is on the member's volume; the image's /conf keeps its logback.xml.
            "command": ["sh", "-c", f"{START_SCRIPT}exec zkServer.sh start-foreground {LIVE_CONF}\n"],
            "env": env,
            "ports": [{"name": "client", "container_port": zk.client_port},
                      *([{"name": "client-tls", "container_port": zk.secure_client_port}] if tls else []),
                      {"name": "peer", "container_port": zk.peer_port},
                      {"name": "election", "container_port": zk.election_port},
                      {"name": "metrics", "container_port": zk.metrics_port}],
            "liveness_probe": kx.exec_probe(RUOK_SCRIPT.format(port=zk.client_port), initial_delay=15,
                                            shell="bash"),
            "readiness_probe": kx.exec_probe(SRVR_SCRIPT.format(port=zk.client_port), initial_delay=5,
                                             shell="bash"),
            "volume_mounts": mounts,
        }, zk.resources)
        pod = t.pod_spec(account, [container], uid=UID, spread=True, termination_grace_period_seconds=30,
                         volumes=volumes)
        self.statefulset = t.quorum_statefulset(
            self.headless, zk.replicas, pod, [kx.volume_claim("data", zk.storage, zk.storage_class)],
            kx.checkov_skips(zk.resources, CKV_K8S_40=f"runs as the official image's zookeeper user (uid {UID}), "
                                                      "which owns its files; another uid could not read them"),
            template_annotations={"orchestrator.io/config-sha": kx.content_hash(cfg),
                                  # Issued outside the program (cert-manager), unless generated: the render's
                                  # reference check accepts exactly these Secrets as absent.
                                  **ClientTls.of(zk).annotations()})

        self.connect_string = self.headless.metadata["name"].apply(
            lambda h: connect_string(server_hosts(platform, zk.replicas, name, h), zk.client_port))
        client_port = zk.secure_client_port if tls else zk.client_port
        self.tls_connect_string = self.headless.metadata["name"].apply(
            lambda h: connect_string(server_hosts(platform, zk.replicas, name, h), client_port))
        self.client_service = self.client.metadata["name"].apply(
            lambda c: f"{platform.service_fqdn(c)}:{zk.client_port}")
        self.register_outputs({"connect_string": self.connect_string, "client_service": self.client_service,
                               "tls_connect_string": self.tls_connect_string})

