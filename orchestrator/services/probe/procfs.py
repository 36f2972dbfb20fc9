"""Processes, sockets and host figures read straight from a proc tree (`--proc-root`, default /proc).

Direct parsing rather than psutil: the probe must read a tree the tests build (any root), and one read of
`stat` per process is all a 15 s resolution needs. A process that exits mid-walk or denies access is
skipped and counted, never fatal.
"""
from __future__ import annotations

import os
import pwd
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from orchestrator.services.probe.cgroups import CgroupIdentity, identify_lines, parse_cgroup_file

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CMDLINE_MAX = 512
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"


@dataclass
class ProcSample:
    pid: int
    ppid: int
    name: str
    cmdline: str
    uid: int | None
    cpu_ticks: int          # utime + stime
    rss_bytes: int
    threads: int
    fds: int
    netns: str | None       # "net:[inode]" or None when not readable
    container: CgroupIdentity | None
    socket_inodes: list[int] = field(default_factory=list)


@dataclass
class WalkResult:
    processes: dict[int, ProcSample]
    skipped: int            # exited mid-walk or access denied
    denied_fds: int         # processes whose fd table we could not read (counted, still reported)


def _read_text(path: str, limit: int = 65536) -> str:
    with open(path, "rb") as fh:
        return fh.read(limit).decode("utf-8", "replace")


def parse_stat(text: str) -> tuple[str, str, int, int, int, int, int]:
    """`pid (comm) state ppid ...` -> (comm, state, ppid, utime+stime, threads, rss pages, starttime).

    comm may contain spaces and parentheses: it runs to the *last* ')'.
    """
    open_at, close_at = text.index("("), text.rindex(")")
    comm = text[open_at + 1:close_at]
    rest = text[close_at + 2:].split()
    # rest[0] = state (field 3); utime = field 14, stime 15, num_threads 20, starttime 22, rss 24 (proc(5)).
    return (comm, rest[0], int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[17]), int(rest[21]),
            int(rest[19]))


@dataclass
class _Static:
    """What rarely changes for a process: read once, then reused while the process (pid + start time) lives,
    and re-read after `max_age` seconds (a runtime may move a process into its cgroup just after exec)."""

    starttime: int
    read_at: float
    cmdline: str
    uid: int
    netns: str | None
    container: CgroupIdentity | None


class ProcessWalker:
    """Walks a proc tree; keeps per-process static facts between walks (Scope caches cmdline likewise)."""

    def __init__(self, proc_root: str | Path = "/proc", max_age: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root, self.max_age, self.clock = str(proc_root), max_age, clock
        self.cache: dict[int, _Static] = {}

    def _static(self, base: str, pid: int, comm: str, starttime: int, now: float) -> _Static:
        cached = self.cache.get(pid)
        if cached is not None and cached.starttime == starttime and now - cached.read_at < self.max_age:
            return cached
        cgroup_text = _read_text(f"{base}/cgroup")
        uid = os.stat(base).st_uid
        try:
            cmdline = _read_text(f"{base}/cmdline", CMDLINE_MAX * 4).replace("\x00", " ").strip()
        except OSError:
            cmdline = ""
        netns: str | None
        try:
            netns = os.readlink(f"{base}/ns/net")
        except OSError:
            netns = None
        static = _Static(starttime, now, cmdline[:CMDLINE_MAX] or f"[{comm}]", uid, netns,
                         identify_lines(parse_cgroup_file(cgroup_text)))
        self.cache[pid] = static
        return static

    def walk(self, read_fds: bool = True) -> WalkResult:
        root = self.root
        processes: dict[int, ProcSample] = {}
        skipped = denied = 0
        now = self.clock()
        try:
            entries = os.listdir(root)
        except OSError:
            return WalkResult({}, 0, 0)
        for entry in entries:
            if not entry.isdigit():
                continue
            pid = int(entry)
            base = f"{root}/{entry}"
            try:
                comm, state, ppid, ticks, threads, rss_pages, starttime = parse_stat(_read_text(f"{base}/stat", 4096))
                if state in ("Z", "X"):  # zombies and dead tasks hold nothing worth reporting
                    continue
                static = self._static(base, pid, comm, starttime, now)
            except (OSError, ValueError, IndexError):
                skipped += 1  # exited between listdir and read, or a malformed / unreadable file
                continue
            fds = 0
            inodes: list[int] = []
            if read_fds:
                try:
                    names = os.listdir(f"{base}/fd")
                    fds = len(names)
                    for name in names:
                        try:
                            target = os.readlink(f"{base}/fd/{name}")
                        except OSError:
                            continue  # closed since listdir
                        if target.startswith("socket:["):
                            inodes.append(int(target[8:-1]))
                except OSError:
                    denied += 1  # other users' fd tables need CAP_SYS_PTRACE (docs/probe.md)
            processes[pid] = ProcSample(pid, ppid, comm, static.cmdline, static.uid, ticks, rss_pages * PAGE_SIZE,
                                        threads, fds, static.netns, static.container, inodes)
        for gone in self.cache.keys() - processes.keys():
            del self.cache[gone]
        return WalkResult(processes, skipped, denied)


def walk_processes(proc_root: str | Path = "/proc", read_fds: bool = True) -> WalkResult:
    """One walk without a cache (tests, one-off use)."""
    return ProcessWalker(proc_root).walk(read_fds)


_users: dict[int, str] = {}


def user_name(uid: int | None) -> str:
    if uid is None:
        return ""
    if uid not in _users:
        try:
            _users[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _users[uid] = str(uid)  # a container's user unknown to this host's passwd
    return _users[uid]


# ---------------------------------------------------------------------------------------------- sockets

class Socket(NamedTuple):
    state: Literal["listen", "established"]
    local_ip: str
    local_port: int
    remote_ip: str | None
    remote_port: int | None
    inode: int
    netns: str | None


# Address strings by their /proc hex form: a node has few distinct addresses and thousands of rows, so each
# is converted once and every row shares the same string (time and memory). Bounded: cleared when large.
_IP_CACHE: dict[str, str] = {}
_IP_CACHE_MAX = 65536


def _ip(hex_addr: str) -> str:
    ip = _IP_CACHE.get(hex_addr)
    if ip is None:
        if len(hex_addr) == 8:
            ip = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hex_addr, 16)))
        else:
            # Four 32-bit words, each in host (little-endian) order.
            raw = b"".join(struct.pack("<I", int(hex_addr[i:i + 8], 16)) for i in range(0, 32, 8))
            ip = socket.inet_ntop(socket.AF_INET6, raw)
        if len(_IP_CACHE) >= _IP_CACHE_MAX:
            _IP_CACHE.clear()
        _IP_CACHE[hex_addr] = ip
    return ip


def parse_net_tcp(text: str, v6: bool, netns: str | None = None) -> Iterable[Socket]:
    """Rows of /proc/net/tcp{,6} in LISTEN or ESTABLISHED state; malformed rows are skipped."""
    width = 32 if v6 else 8
    for line in text.splitlines()[1:]:
        cols = line.split(None, 10)
        if len(cols) < 10:
            continue
        state = cols[3]
        if state not in (TCP_ESTABLISHED, TCP_LISTEN):
            continue
        local, remote = cols[1], cols[2]
        if len(local) != width + 5 or len(remote) != width + 5 or local[width] != ":" or remote[width] != ":":
            continue
        try:
            inode = int(cols[9])
            if state == TCP_LISTEN:
                yield Socket("listen", _ip(local[:width]), int(local[width + 1:], 16), None, None, inode, netns)
            else:
                yield Socket("established", _ip(local[:width]), int(local[width + 1:], 16), _ip(remote[:width]),
                             int(remote[width + 1:], 16), inode, netns)
        except (ValueError, struct.error, OSError):
            continue


def read_sockets(proc_root: str | Path, processes: dict[int, ProcSample]) -> tuple[list[Socket], int]:
    """Every TCP socket, reading /proc/<pid>/net/tcp{,6} once per network namespace (not once per process).

    Returns the sockets and the number of namespaces read.
    """
    root = str(proc_root)
    seen: set[str] = set()
    out: list[Socket] = []
    readers: list[tuple[str | None, str]] = []
    for pid, proc in sorted(processes.items()):
        key = proc.netns or f"unknown:{pid}"
        if proc.netns is None or key in seen:
            continue
        seen.add(key)
        readers.append((proc.netns, f"{root}/{pid}/net"))
    if not readers:
        readers.append((None, f"{root}/net"))  # no ns links (a test tree or old kernel): the tree's own
    for netns, net_dir in readers:
        for name, v6 in (("tcp", False), ("tcp6", True)):
            try:
                text = _read_text(f"{net_dir}/{name}", 64 * 1024 * 1024)
            except OSError:
                continue
            out.extend(parse_net_tcp(text, v6, netns))
    return out, len(readers)


# ---------------------------------------------------------------------------------------------- host

@dataclass
class HostSample:
    hostname: str
    kernel: str
    addresses: list[str]
    cpus: int
    cpu_busy: float          # jiffies of /proc/stat's cpu line: busy
    cpu_total: float         # and total
    memory_total_bytes: float
    memory_used_bytes: float
    load: tuple[float, float, float]
    uptime_seconds: float


def _safe(path: str) -> str:
    try:
        return _read_text(path, 1 << 20)
    except OSError:
        return ""


def read_host(proc_root: str | Path, hostname: str | None = None) -> HostSample:
    root = str(proc_root)
    busy = total = 0.0
    cpus = 0
    for line in _safe(f"{root}/stat").splitlines():
        if line.startswith("cpu "):
            values = [float(v) for v in line.split()[1:]]
            total = sum(values[:8])  # guest time is already inside user/nice
            busy = total - values[3] - (values[4] if len(values) > 4 else 0.0)  # minus idle and iowait
        elif line.startswith("cpu"):
            cpus += 1
    meminfo: dict[str, float] = {}
    for line in _safe(f"{root}/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            try:
                meminfo[key] = float(parts[0]) * 1024
            except ValueError:
                continue
    mem_total = meminfo.get("MemTotal", 0.0)
    mem_used = max(mem_total - meminfo.get("MemAvailable", meminfo.get("MemFree", 0.0)), 0.0)
    load_parts = _safe(f"{root}/loadavg").split()
    try:
        load = (float(load_parts[0]), float(load_parts[1]), float(load_parts[2]))
    except (IndexError, ValueError):
        load = (0.0, 0.0, 0.0)
    try:
        uptime = float(_safe(f"{root}/uptime").split()[0])
    except (IndexError, ValueError):
        uptime = 0.0
    name = hostname or _safe(f"{root}/sys/kernel/hostname").strip() or socket.gethostname()
    return HostSample(name, _safe(f"{root}/sys/kernel/osrelease").strip(), host_addresses(root), max(cpus, 1),
                      busy, total, mem_total, mem_used, load, uptime)


def host_addresses(proc_root: str) -> list[str]:
    """The host's own IPv4 and global IPv6 addresses, from PID 1's network namespace (hostPID)."""
    found: list[str] = []
    trie = _safe(f"{proc_root}/1/net/fib_trie") or _safe(f"{proc_root}/net/fib_trie")
    last_ip = ""
    for line in trie.splitlines():
        text = line.strip()
        if text.startswith("|--"):
            last_ip = text[3:].strip()
        elif text == "/32 host LOCAL" and last_ip and not last_ip.startswith("127.") and last_ip not in found:
            found.append(last_ip)
    inet6 = _safe(f"{proc_root}/1/net/if_inet6") or _safe(f"{proc_root}/net/if_inet6")
    for line in inet6.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3] == "00":  # scope global only
            try:
                addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(cols[0]))
            except ValueError:
                continue
            if addr not in found:
                found.append(addr)
    return found[:64]
