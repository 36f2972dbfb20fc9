"""Container attribution from cgroup paths: every runtime layout, both drivers, v1 and v2, and bad input."""
from __future__ import annotations

import pytest

from orchestrator.services.probe.cgroups import (
    CgroupIdentity,
    CgroupStats,
    identify,
    identify_lines,
    parse_cgroup_file,
)

CID = "4f1c8a3e" * 8          # a 64-hex container id
CID2 = "0123abcd" * 8
POD = "7d0c4c1e-2b8a-4f7e-9d55-1a2b3c4d5e6f"
POD_ = POD.replace("-", "_")  # the systemd driver's spelling
MESOS = "f67a5e0b-91f9-474a-94a0-e2c6a3b28ea4"
MESOS_NESTED = "0b7fe4b0-4d29-11e6-8e83-0242ac110003"

LAYOUTS = [
    # (name, cgroup path, expected)
    ("docker cgroupfs", f"/docker/{CID}", CgroupIdentity("docker", CID, None, f"/docker/{CID}")),
    ("docker systemd", f"/system.slice/docker-{CID}.scope",
     CgroupIdentity("docker", CID, None, f"/system.slice/docker-{CID}.scope")),
    ("containerd cgroupfs burstable", f"/kubepods/burstable/pod{POD}/{CID}",
     CgroupIdentity("containerd", CID, POD, f"/kubepods/burstable/pod{POD}/{CID}")),
    ("containerd cgroupfs guaranteed", f"/kubepods/pod{POD}/{CID}",
     CgroupIdentity("containerd", CID, POD, f"/kubepods/pod{POD}/{CID}")),
    ("containerd systemd",
     f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_}.slice/cri-containerd-{CID}.scope",
     CgroupIdentity("containerd", CID, POD,
                    f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_}.slice/"
                    f"cri-containerd-{CID}.scope")),
    ("containerd systemd guaranteed",
     f"/kubepods.slice/kubepods-pod{POD_}.slice/cri-containerd-{CID}.scope",
     CgroupIdentity("containerd", CID, POD, f"/kubepods.slice/kubepods-pod{POD_}.slice/cri-containerd-{CID}.scope")),
    ("cri-o systemd",
     f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/crio-{CID}.scope",
     CgroupIdentity("cri-o", CID, POD,
                    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/crio-{CID}.scope")),
    ("cri-o cgroupfs", f"/kubepods/burstable/pod{POD}/crio-{CID}",
     CgroupIdentity("cri-o", CID, POD, f"/kubepods/burstable/pod{POD}/crio-{CID}")),
    ("kubernetes + docker systemd",
     f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/docker-{CID}.scope",
     CgroupIdentity("docker", CID, POD,
                    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/docker-{CID}.scope")),
    ("mesos", f"/mesos/{MESOS}", CgroupIdentity("mesos", MESOS, None, f"/mesos/{MESOS}")),
    ("mesos nested (outer container wins)", f"/mesos/{MESOS}/mesos/{MESOS_NESTED}",
     CgroupIdentity("mesos", MESOS, None, f"/mesos/{MESOS}")),
    ("private cgroup namespace (v2 pod default)",
     f"/../../kubepods-burstable-pod{POD_}.slice/cri-containerd-{CID}.scope",
     CgroupIdentity("containerd", CID, POD, f"/kubepods-burstable-pod{POD_}.slice/cri-containerd-{CID}.scope")),
    ("sub-cgroup inside a container", f"/kubepods/burstable/pod{POD}/{CID}/init",
     CgroupIdentity("containerd", CID, POD, f"/kubepods/burstable/pod{POD}/{CID}")),
]


@pytest.mark.parametrize(("path", "expected"), [(p, e) for _n, p, e in LAYOUTS], ids=[n for n, _p, _e in LAYOUTS])
def test_layouts(path: str, expected: CgroupIdentity) -> None:
    assert identify(path) == expected


@pytest.mark.parametrize("path", [
    "/", "/user.slice/user-1000.slice/session-2.scope", "/system.slice/containerd.service",
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/crio-conmon-{CID}.scope",
    f"/some/{CID}",           # a 64-hex name without a known parent is not enough
    "/docker/not-an-id", "/mesos/not-a-uuid", "",
])
def test_not_containers(path: str) -> None:
    assert identify(path) is None


def test_v1_file_with_many_controllers_and_malformed_lines() -> None:
    text = "\n".join([
        "12:memory:/docker/" + CID,
        "garbage without colons",
        "11:cpu,cpuacct:/docker/" + CID,
        "1:name=systemd:/system.slice/docker-" + CID2 + ".scope",  # systemd's view is consulted last
        "5:devices:relative/path",                                 # not a path: skipped
        "",
    ])
    lines = parse_cgroup_file(text)
    assert [(line.hierarchy, line.controllers) for line in lines] == [
        ("12", ("memory",)), ("11", ("cpu", "cpuacct")), ("1", ("name=systemd",))]
    assert identify_lines(lines) == CgroupIdentity("docker", CID, None, f"/docker/{CID}")


def test_v2_single_line() -> None:
    lines = parse_cgroup_file(f"0::/kubepods/besteffort/pod{POD}/{CID}\n")
    assert identify_lines(lines) == CgroupIdentity("containerd", CID, POD, f"/kubepods/besteffort/pod{POD}/{CID}")
    assert identify_lines(parse_cgroup_file("0::/init.scope\n")) is None


def test_stats_v2(tmp_path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory io\n")
    leaf = tmp_path / "kubepods" / f"pod{POD}" / CID
    leaf.mkdir(parents=True)
    (leaf / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (leaf / "memory.current").write_text("104857600\n")
    stats = CgroupStats(tmp_path)
    path = f"/kubepods/pod{POD}/{CID}"
    assert stats.v2 and stats.cpu_seconds(path) == pytest.approx(2.5) and stats.memory_bytes(path) == 104857600
    assert stats.cpu_seconds("/gone") is None and stats.memory_bytes("/gone") is None


def test_stats_v1(tmp_path) -> None:
    for d in ("cpu,cpuacct", "memory"):
        (tmp_path / d / "mesos" / MESOS).mkdir(parents=True)
    (tmp_path / "cpu,cpuacct" / "mesos" / MESOS / "cpuacct.usage").write_text("1500000000\n")
    (tmp_path / "memory" / "mesos" / MESOS / "memory.usage_in_bytes").write_text("garbage\n")
    stats = CgroupStats(tmp_path)
    assert not stats.v2
    assert stats.cpu_seconds(f"/mesos/{MESOS}") == pytest.approx(1.5)
    assert stats.memory_bytes(f"/mesos/{MESOS}") is None  # malformed file: no value, no error
