"""Replay what Kubernetes does to the ZooKeeper StatefulSet, with real ZooKeeper processes on loopback.

A `LoopbackStatefulSet` holds "pods" (ordinal → a ZooKeeper process with its own data directory, its
persistent volume) and applies a new template as the StatefulSet controller does for the component's
settings (`podManagementPolicy: Parallel`, `RollingUpdate`, claims retained):

- scale up: every missing ordinal is created at once; scale down: every extra ordinal is deleted at once;
- rolling update: highest ordinal first, one pod at a time; a pod is deleted only when every other pod
  is Ready (the PodDisruptionBudget's maxUnavailable 1), and the next waits until the new one is Ready.

Each pod starts exactly as the container does: the component's START_SCRIPT (myid, live zoo.cfg from the
rendered one) with the pod's directories, then the server on the live zoo.cfg. Readiness is the
component's own probe script. The rendered zoo.cfg comes from `components.zookeeper.zoo_cfg`, remapped
to loopback: each server's ports, the data directory, and the metrics provider (Debian's build does not
ship it).

`LeaderWatch` samples every running server's mode in the background and records every moment with more
than one leader; `Writer` writes sequential znodes continuously and records those ZooKeeper acknowledged.
Every thread and process is bounded in time and stopped by the test.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components import zookeeper as zkc
from components.settings import ZooKeeperSettings
from tests.support.tools import require_tool
from tests.support.zk_ensemble import ZK_JAR, four_letter, free_ports

HOST = "127.0.0.1"
# Debian's ZooKeeper ships no slf4j binding; Maven's simple one (when installed) puts warnings in server.log.
_LOGGING = [j for j in ("/usr/share/java/maven3-slf4j-provider.jar", "/usr/share/java/maven-shared-utils.jar")
            if Path(j).is_file()]
# The Netty transport (TLS) needs netty-codec, which the Debian jar's manifest Class-Path leaves out.
_NETTY = [j for j in ("/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar") if Path(j).is_file()]
CLASSPATH = ":".join([ZK_JAR, *_NETTY, *(_LOGGING if len(_LOGGING) == 2 else [])])
# Lines of the rendered zoo.cfg that are the pod's or the cluster's, replaced on loopback.
_DROPPED = re.compile(r"^(metricsProvider\.[\w.]+|quorumListenOnAllIPs)=")
_SERVER = re.compile(r"^server\.(\d+)=")


def super_digest(password: str) -> str:
    """ZooKeeper's digest of `super:<password>` (what the credentials tier stores for the servers)."""
    raw = hashlib.sha1(f"super:{password}".encode()).digest()  # noqa: S324 - ZooKeeper's digest scheme
    return f"super:{base64.b64encode(raw).decode()}"


@dataclass
class Pod:
    ordinal: int
    client_port: int
    peer_port: int
    election_port: int
    volume: Path
    proc: subprocess.Popen[bytes] | None = None
    revision: str = ""

    @property
    def myid(self) -> int:
        return self.ordinal + 1


@dataclass
class LoopbackStatefulSet:
    workdir: Path
    max_replicas: int = 5
    heap_mb: int = 128
    superuser_password: str | None = None
    # The component's start script; `naive=True` replays the previous release instead (the live config
    # is the rendered one at every start, membership from the static list).
    naive: bool = False
    # A directory holding the TLS Secret's files (tls.crt, tls.key, ca.crt), for a `tls_secret` ensemble.
    tls_dir: Path | None = None
    pods: dict[int, Pod] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_tool("java", hint="install a JRE (default-jre-headless)")
        require_tool("zookeeper", path=ZK_JAR, hint="apt-get install zookeeper")
        ports = free_ports(4 * self.max_replicas)
        self._ports = {i: tuple(ports[3 * i:3 * i + 3]) for i in range(self.max_replicas)}
        self.secure_ports = {i: ports[3 * self.max_replicas + i] for i in range(self.max_replicas)}
        self._lock = threading.Lock()
        if self.superuser_password is not None:
            (self.workdir / "secret").mkdir(parents=True, exist_ok=True)
            (self.workdir / "secret" / zkc.SUPER_DIGEST_KEY).write_text(super_digest(self.superuser_password))

    # --- the rendered config, on loopback ------------------------------------------------------
    def rendered(self, zk: ZooKeeperSettings, replicas: int) -> str:
        """The component's zoo.cfg for `replicas` servers, each server line on its loopback ports."""
        text = zkc.zoo_cfg(zk, [HOST] * replicas, data_dir="@DATA_DIR@", tls_dir=str(self.tls_dir),
                           keystore="@TMP@/keystore.pem")
        out = []
        for line in text.splitlines():
            if _DROPPED.match(line):
                continue
            if (m := _SERVER.match(line)) is not None:
                client, peer, election = self._ports[int(m.group(1)) - 1]
                line = f"server.{m.group(1)}={HOST}:{peer}:{election}:participant;{HOST}:{client}"
            out.append(line)
        return "\n".join(out) + "\n"

    def server_line(self, ordinal: int) -> str:
        client, peer, election = self._ports[ordinal]
        return f"server.{ordinal + 1}={HOST}:{peer}:{election}:participant;{HOST}:{client}"

    def connect_string(self, ordinals: list[int] | None = None) -> str:
        chosen = range(self.max_replicas) if ordinals is None else ordinals
        return ",".join(f"{HOST}:{self._ports[i][0]}" for i in chosen)

    # --- pods ------------------------------------------------------------------------------------
    def create(self, ordinal: int, rendered: str) -> Pod:
        client, peer, election = self._ports[ordinal]
        pod = self.pods.get(ordinal) or Pod(ordinal, client, peer, election, self.workdir / f"pvc-{ordinal}")
        data = pod.volume / "data"
        data.mkdir(parents=True, exist_ok=True)
        template = pod.volume / "configmap" / "zoo.cfg"  # the ConfigMap as this pod sees it
        template.parent.mkdir(exist_ok=True)
        own = rendered.replace("@DATA_DIR@", str(data)).replace("@TMP@", str(pod.volume / "tmp"))
        own = re.sub(r"(?m)^secureClientPort=\d+$",
                     f"secureClientPort={self.secure_ports[ordinal]}\nsecureClientPortAddress={HOST}", own)
        template.write_text(own)
        live = data / "conf" / "zoo.cfg"
        if self.naive:  # the previous release: the rendered file is the live one, every time
            live.parent.mkdir(exist_ok=True)
            live.write_text(template.read_text())
            subprocess.run(["sh", "-c", zkc.MYID_SCRIPT], check=True, timeout=10,
                           env={"HOSTNAME": f"zookeeper-{ordinal}", "ZOO_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"})
        else:
            env = {"HOSTNAME": f"zookeeper-{ordinal}", "ZOO_DATA_DIR": str(data), "ZK_TEMPLATE": str(template),
                   "ZK_LIVE_CONF": str(live), "PATH": "/usr/bin:/bin"}
            if self.tls_dir is not None:
                env |= {"ZK_TLS_DIR": str(self.tls_dir), "ZK_TLS_KEYSTORE": str(pod.volume / "tmp" / "keystore.pem")}
            if self.superuser_password is not None:
                env["ZK_SUPERUSER_FILE"] = str(self.workdir / "secret" / zkc.SUPER_DIGEST_KEY)
            subprocess.run(["sh", "-c", zkc.START_SCRIPT], check=True, timeout=10, env=env)
        with open(pod.volume / "server.log", "ab") as log:
            pod.proc = subprocess.Popen(
                ["java", f"-Xmx{self.heap_mb}m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", CLASSPATH,
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(live)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pod.revision = hashlib.sha256(rendered.encode()).hexdigest()[:12]
        with self._lock:
            self.pods[ordinal] = pod
        self.events.append(f"create {ordinal} rev {pod.revision}")
        return pod

    def delete(self, ordinal: int) -> None:
        """Kubernetes' pod deletion: SIGTERM, then SIGKILL after the grace period."""
        pod = self.pods[ordinal]
        if pod.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.proc.pid, signal.SIGTERM)
            try:
                pod.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(pod.proc.pid, signal.SIGKILL)
                pod.proc.wait(timeout=10)
            pod.proc = None
        self.events.append(f"delete {ordinal}")

    def running(self) -> list[Pod]:
        with self._lock:
            return [p for p in self.pods.values() if p.proc is not None]

    def ready(self, ordinal: int) -> bool:
        """The component's readiness probe, run as the kubelet would (bash, in the pod's network)."""
        pod = self.pods.get(ordinal)
        if pod is None or pod.proc is None:
            return False
        probe = zkc.SRVR_SCRIPT.format(port=pod.client_port)
        return subprocess.run(["bash", "-c", probe], capture_output=True, timeout=10).returncode == 0

    def wait_ready(self, ordinals: list[int], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.ready(i) for i in ordinals):
                return
            time.sleep(0.2)
        raise TimeoutError(f"pods {ordinals} not Ready after {timeout:g} s: "
                           + "; ".join(f"{i}: {self.mode(i)}" for i in ordinals))

    def mode(self, ordinal: int) -> str | None:
        pod = self.pods.get(ordinal)
        if pod is None or pod.proc is None:
            return None
        try:
            out = four_letter(pod.client_port, "srvr", timeout=1.0)
        except OSError:
            return None
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Mode:")), None)

    # --- the controller ----------------------------------------------------------------------------
    def apply(self, zk: ZooKeeperSettings, replicas: int, ready_timeout: float = 60.0,
              before_each_update: Callable[[int], None] | None = None) -> None:
        """What the StatefulSet controller does with a new spec (replicas, template)."""
        rendered = self.rendered(zk, replicas)
        revision = hashlib.sha256(rendered.encode()).hexdigest()[:12]
        live = sorted(o for o, p in self.pods.items() if p.proc is not None)
        for ordinal in [o for o in live if o >= replicas]:  # Parallel: extra pods go at once
            self.delete(ordinal)
        missing = [o for o in range(replicas) if o not in live]
        for ordinal in missing:  # Parallel: missing pods come at once, with the new template
            self.create(ordinal, rendered)
        self.wait_ready(list(range(replicas)), ready_timeout)
        for ordinal in reversed(range(replicas)):  # RollingUpdate: highest ordinal first
            if self.pods[ordinal].revision == revision:
                continue
            others = [o for o in range(replicas) if o != ordinal]
            self.wait_ready(others, ready_timeout)  # the PDB: at most one pod unavailable
            if before_each_update is not None:
                before_each_update(ordinal)
            self.delete(ordinal)
            self.create(ordinal, rendered)
            self.wait_ready([ordinal], ready_timeout)

    def stop(self) -> None:
        for ordinal in list(self.pods):
            self.delete(ordinal)


class LeaderWatch:
    """Samples the mode of every running server until stopped; `max_leaders` is the most seen at once."""

    def __init__(self, sts: LoopbackStatefulSet, interval: float = 0.05, limit_s: float = 600.0) -> None:
        self.sts, self.interval, self.limit_s = sts, interval, limit_s
        self.samples = 0
        self.max_leaders = 0
        self.split: list[dict[int, str | None]] = []  # samples with two or more leaders
        self.marks: list[int] = []  # sample counts at the caller's phase boundaries
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LeaderWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def mark(self) -> None:
        """Record a phase boundary; `sampled_every_phase` then says whether each phase saw a sample."""
        self.marks.append(self.samples)

    def sampled_every_phase(self) -> bool:
        # Proves the watch ran through every step, not that the steps were slow: a count threshold would be a
        # timing assertion (a fast machine finishes a step in fewer samples).
        counts = [0, *self.marks, self.samples]
        return all(b > a for a, b in zip(counts, counts[1:], strict=False))

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            modes = {p.ordinal: self.sts.mode(p.ordinal) for p in self.sts.running()}
            leaders = sum(1 for m in modes.values() if m == "leader")
            self.samples += 1
            self.max_leaders = max(self.max_leaders, leaders)
            if leaders > 1:
                self.split.append(modes)
            self._stop.wait(self.interval)


class Writer:
    """Creates sequential znodes under `root` until stopped; `acked` holds what ZooKeeper acknowledged."""

    def __init__(self, connect: str, root: str = "/roll", limit_s: float = 600.0, max_writes: int = 200_000,
                 pause: float = 0.005) -> None:
        from kazoo.client import KazooClient

        self.client = KazooClient(hosts=connect, timeout=10.0, connection_retry={"max_tries": -1, "max_delay": 1})
        self.root, self.limit_s, self.max_writes, self.pause = root, limit_s, max_writes, pause
        self.acked: dict[str, bytes] = {}
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self.client.start(timeout=30)
        self.client.ensure_path(self.root)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.client.stop()
        self.client.close()

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline and n < self.max_writes:
            n += 1
            value = f"write-{n}".encode()
            try:
                path = self.client.create(f"{self.root}/w-", value, sequence=True)
            except Exception:  # noqa: BLE001 - unacknowledged: may or may not exist, never counted
                self.failed += 1
                self._stop.wait(0.05)
                continue
            self.acked[path] = value
            self._stop.wait(self.pause)


def write_tls_secret(directory: Path, hosts: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = (HOST,)) -> Path:
    """The files of a kubernetes.io/tls Secret as cert-manager issues them (tls.crt, tls.key, ca.crt):
    a fresh CA and one certificate for every member (`hosts`, `ips`), issued by the program's own
    generator (components/zk_certs.py, `zookeeper.tls_certificates: generate`)."""
    from components import zk_certs

    ca_crt, ca_key = zk_certs.issue_ca("orchestrator test CA", days=2)
    crt, key = zk_certs.issue_member(ca_crt, ca_key, list(hosts), list(ips), days=1)
    return write_secret_files(directory, ca_crt, crt, key)


def write_secret_files(directory: Path, ca_crt: str, tls_crt: str, tls_key: str) -> Path:
    """A mounted kubernetes.io/tls Secret's files (the key readable by its owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_text(ca_crt)
    (directory / "tls.crt").write_text(tls_crt)
    (directory / "tls.key").write_text(tls_key)
    (directory / "tls.key").chmod(0o600)
    return directory


def read_all(connect: str, paths: dict[str, bytes], root: str = "/roll") -> list[str]:
    """The acknowledged writes a server does not return as written (empty: all there)."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=connect, timeout=10.0)
    client.start(timeout=30)
    try:
        client.sync(root)
        present = set(client.get_children(root))
        missing = [p for p in paths if p.rsplit("/", 1)[1] not in present]
        wrong = [p for p in list(paths)[:: max(1, len(paths) // 200)] if p not in missing
                 and client.get(p)[0] != paths[p]]
        return missing + wrong
    finally:
        client.stop()
        client.close()
