"""Containers from cgroup paths, not from a runtime API (no Docker socket, no CRI call, no stats stream).

A process's `/proc/<pid>/cgroup` names the cgroup it lives in; every runtime encodes its container id in
that path, and Kubernetes encodes the pod UID. The layouts recognised (from the runtimes' documented
naming; tests/probe/test_cgroups.py builds one tree per layout):

| runtime | cgroupfs driver (v1 and v2) | systemd driver (v1 and v2) |
|---|---|---|
| Docker | `/docker/<64 hex>` | `/system.slice/docker-<64 hex>.scope` |
| Kubernetes + containerd | `/kubepods/<qos>/pod<uid>/<64 hex>` | `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<64 hex>.scope` |
| Kubernetes + CRI-O | `/kubepods/<qos>/pod<uid>/crio-<64 hex>` | `.../kubepods-<qos>-pod<uid_>.slice/crio-<64 hex>.scope` |
| Kubernetes + Docker (dockershim) | as containerd (a bare id under kubepods is reported as containerd: dockershim left Kubernetes in 1.24) | `.../docker-<64 hex>.scope` |
| Mesos containerizer | `/mesos/<uuid>` (nested: `/mesos/<uuid>/mesos/<uuid>`; the outer id is the executor's container) | same |

Guaranteed pods have no `<qos>` level. Under a private cgroup namespace (a pod's default on cgroup v2) paths
of other processes start with `/..` segments; they are stripped before matching and before reading stats.
CRI-O's `crio-conmon-<id>.scope` holds the container monitor, not the container: it is not attributed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEX64 = r"[0-9a-f]{64}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

_POD = re.compile(r"pod(?P<uid>[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$")
# Leaf (last path segment) forms, most specific first.
_LEAVES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^cri-containerd-(?P<id>{HEX64})\.scope$"), "containerd"),
    (re.compile(rf"^crio-(?P<id>{HEX64})(?:\.scope)?$"), "cri-o"),
    (re.compile(rf"^docker-(?P<id>{HEX64})\.scope$"), "docker"),
    (re.compile(rf"^(?P<id>{HEX64})$"), "bare"),
]
_MESOS = re.compile(rf"(?:^|/)mesos/(?P<id>{UUID})(?:/|$)")


@dataclass(frozen=True)
class CgroupIdentity:
    runtime: str            # docker | containerd | cri-o | mesos
    container_id: str
    pod_uid: str | None = None
    path: str = ""          # the cgroup path (relative to a hierarchy's root) of the container


def clean_path(path: str) -> str:
    """Drop the `/..` prefix a private cgroup namespace adds to other processes' paths."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return "/" + "/".join(parts)


def identify(path: str) -> CgroupIdentity | None:
    """The container a cgroup path belongs to, or None (host process, conmon, unknown layout)."""
    path = clean_path(path)
    mesos = _MESOS.search(path)
    if mesos:
        end = mesos.end("id")
        return CgroupIdentity("mesos", mesos.group("id"), None, path[:end])
    segments = path.strip("/").split("/")
    for depth in range(len(segments) - 1, -1, -1):
        leaf = segments[depth]
        for pattern, runtime in _LEAVES:
            match = pattern.match(leaf)
            if not match:
                continue
            pod_uid = None
            in_kube = False
            for seg in segments[:depth]:
                if seg.startswith("kubepods"):
                    in_kube = True
                pod = _POD.search(seg)
                if pod:
                    pod_uid = pod.group("uid").replace("_", "-")
            if runtime == "bare":
                if in_kube:
                    runtime = "containerd"
                elif depth >= 1 and segments[depth - 1] == "docker":
                    runtime = "docker"
                else:
                    continue  # a 64-hex name outside a known parent: not enough to call it a container
            return CgroupIdentity(runtime, match.group("id"), pod_uid, "/" + "/".join(segments[:depth + 1]))
    return None


@dataclass(frozen=True)
class CgroupLine:
    hierarchy: str
    controllers: tuple[str, ...]
    path: str


def parse_cgroup_file(text: str) -> list[CgroupLine]:
    """Lines `hierarchy-id:controller-list:path`; malformed lines are skipped (never fatal)."""
    lines = []
    for raw in text.splitlines():
        parts = raw.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        controllers = tuple(c for c in parts[1].split(",") if c)
        lines.append(CgroupLine(parts[0], controllers, parts[2]))
    return lines


def identify_lines(lines: list[CgroupLine]) -> CgroupIdentity | None:
    """v2's single `0::` line first, then v1 controllers; the first line that names a container wins."""
    ordered = sorted(lines, key=lambda line: (line.hierarchy != "0", "name=systemd" in line.controllers))
    for line in ordered:
        found = identify(line.path)
        if found:
            return found
    return None


class CgroupStats:
    """Per-container CPU and memory read from the cgroup files of the host's hierarchy (`--cgroup-root`).

    cgroup v2 (`cgroup.controllers` at the root): `<root>/<path>/cpu.stat` (usage_usec) and
    `memory.current`. cgroup v1: `<root>/cpu,cpuacct/<path>/cpuacct.usage` (ns; also `cpuacct/`) and
    `<root>/memory/<path>/memory.usage_in_bytes`. Missing or unreadable files give None, never an error.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.v2 = (self.root / "cgroup.controllers").exists()
        self._cpu_dirs = [d for d in ("cpu,cpuacct", "cpuacct,cpu", "cpuacct", "cpu") if (self.root / d).is_dir()]

    def cpu_seconds(self, path: str) -> float | None:
        rel = clean_path(path).lstrip("/")
        if self.v2:
            text = _read(self.root / rel / "cpu.stat")
            if text is None:
                return None
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return _float(value, 1e-6)
            return None
        for d in self._cpu_dirs:
            text = _read(self.root / d / rel / "cpuacct.usage")
            if text is not None:
                return _float(text, 1e-9)
        return None

    def memory_bytes(self, path: str) -> float | None:
        rel = clean_path(path).lstrip("/")
        file = self.root / rel / "memory.current" if self.v2 else self.root / "memory" / rel / "memory.usage_in_bytes"
        text = _read(file)
        return _float(text, 1.0) if text is not None else None


def _read(path: Path) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _float(text: str, scale: float) -> float | None:
    try:
        return float(text.strip()) * scale
    except ValueError:
        return None
