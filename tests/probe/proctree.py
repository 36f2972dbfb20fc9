"""Build proc and cgroup trees on disk, in the kernel's formats (proc(5)), for the probe's tests."""
from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

HOST_NETNS = "net:[4026531992]"


def stat_line(pid: int, comm: str, ppid: int, state: str = "S", ticks: tuple[int, int] = (0, 0),
              threads: int = 1, rss_pages: int = 256) -> str:
    # Fields 1..24 (pid, comm, state, ppid, ... utime=14, stime=15, num_threads=20, rss=24), then padding.
    fields = [str(pid), f"({comm})", state, str(ppid)] + ["0"] * 9 + [str(ticks[0]), str(ticks[1])]
    fields += ["0"] * 4 + [str(threads)] + ["0"] * 3 + [str(rss_pages)] + ["0"] * 28
    return " ".join(fields) + "\n"


def add_process(root: Path, pid: int, ppid: int, comm: str, cmdline: list[str] | None = None,
                cgroup: str = "0::/init.scope\n", netns: str | None = HOST_NETNS, sockets: tuple[int, ...] | list[int] = (),
                other_fds: int = 0, state: str = "S", ticks: tuple[int, int] = (0, 0), uid: int | None = None) -> Path:
    base = root / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "ns").mkdir()
    (base / "stat").write_text(stat_line(pid, comm, ppid, state, ticks))
    (base / "cgroup").write_text(cgroup)
    (base / "cmdline").write_bytes(b"\x00".join(a.encode() for a in (cmdline or [])) + (b"\x00" if cmdline else b""))
    if netns:
        os.symlink(netns, base / "ns" / "net")
    fd = 0
    for inode in sockets:
        os.symlink(f"socket:[{inode}]", base / "fd" / str(fd))
        fd += 1
    for _ in range(other_fds):
        os.symlink("/dev/null", base / "fd" / str(fd))
        fd += 1
    if uid is not None:
        os.chown(base, uid, -1)
    return base


def _hex4(ip: str) -> str:
    return f"{struct.unpack('<I', socket.inet_aton(ip))[0]:08X}"


def _hex6(ip: str) -> str:
    raw = socket.inet_pton(socket.AF_INET6, ip)
    return "".join(f"{struct.unpack('<I', raw[i:i + 4])[0]:08X}" for i in range(0, 16, 4))


def tcp_table(rows: list[tuple[str, int, str, int, str, int]], v6: bool = False) -> str:
    """rows: (local ip, local port, remote ip, remote port, state hex, inode)."""
    enc = _hex6 if v6 else _hex4
    out = ["  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"]
    for i, (lip, lport, rip, rport, st, inode) in enumerate(rows):
        out.append(f"{i:4d}: {enc(lip)}:{lport:04X} {enc(rip)}:{rport:04X} {st} 00000000:00000000 00:00000000 "
                   f"00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0")
    return "\n".join(out) + "\n"


def write_net(base: Path, v4: list, v6: list | None = None) -> None:
    (base / "net").mkdir(exist_ok=True)
    (base / "net" / "tcp").write_text(tcp_table(v4))
    (base / "net" / "tcp6").write_text(tcp_table(v6 or [], v6=True))


def write_host_files(root: Path) -> None:
    (root / "stat").write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"
                               "cpu1 50 0 25 400 25 0 0 0 0 0\n")
    (root / "meminfo").write_text("MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n")
    (root / "loadavg").write_text("0.50 0.25 0.10 1/100 999\n")
    (root / "uptime").write_text("12345.67 20000.00\n")
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("6.1.0-test\n")
    (root / "sys" / "kernel" / "hostname").write_text("node-a\n")
