"""Helpers for the ZooKeeper tests: clients with the test identity, bulk tree building, polling."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from orchestrator.services.zk.tree import Ensemble, delete_tree
from tests.support.zk_ensemble import LocalEnsemble

# The engine authenticates as this digest user in the tests, so nodes protected for it can be copied.
AUTH = "digest:orch:s3cret"
ORCH_ACL = [make_digest_acl("orch", "s3cret", all=True)]


def make_client(hosts: str, timeout: float = 10.0) -> KazooClient:
    c = KazooClient(hosts=hosts, timeout=timeout, auth_data=[("digest", "orch:s3cret")])
    c.start(timeout=15)
    return c


def wait_until(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as exc:  # the ensemble may be between leaders
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}: last={last!r}")


def bulk_create(client: KazooClient, items: list[tuple[str, bytes]], acl=None, batch: int = 200) -> None:
    """Create (path, data) pairs, parents listed before children, in pipelined multi batches."""
    pending = []
    for i in range(0, len(items), batch):
        tx = client.transaction()
        for path, data in items[i:i + batch]:
            tx.create(path, data, acl)
        pending.append(tx.commit_async())
    for r in pending:
        out = r.get()
        assert not any(isinstance(x, Exception) for x in out), out


def wide_tree(root: str, branches: int, leaves: int, size: int = 16) -> list[tuple[str, bytes]]:
    items = [(root, b"root")]
    for b in range(branches):
        items.append((f"{root}/b{b:03d}", f"branch {b}".encode()))
        for n in range(leaves):
            items.append((f"{root}/b{b:03d}/n{n:04d}", (f"{b}/{n}:".encode() * size)[:size]))
    return items


@dataclass
class Pair:
    a: LocalEnsemble
    b: LocalEnsemble
    ca: KazooClient
    cb: KazooClient
    root: str
    extra: list[KazooClient] = field(default_factory=list)
    extra_roots: list[str] = field(default_factory=list)
    engines: list = field(default_factory=list)

    @property
    def A(self) -> Ensemble:
        return Ensemble(self.a.connect_string, [("digest", "orch:s3cret")], self.ca)

    @property
    def B(self) -> Ensemble:
        return Ensemble(self.b.connect_string, [("digest", "orch:s3cret")], self.cb)

    def client(self, side: str, timeout: float = 10.0) -> KazooClient:
        c = make_client((self.a if side == "a" else self.b).connect_string, timeout)
        self.extra.append(c)
        return c

    def client_for(self, hosts: str, timeout: float = 10.0) -> KazooClient:
        """A session on any connect string (another spelling, a chroot); closed at teardown."""
        c = make_client(hosts, timeout)
        self.extra.append(c)
        return c

    def clean(self, *roots: str) -> None:
        for side in (self.A, self.B):
            for root in roots or (self.root,):
                delete_tree(side, root)

    def close(self) -> None:
        for engine in self.engines:
            engine.stop()
            engine.source.close()
            engine.target.close()
        for c in self.extra + [self.ca, self.cb]:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        # Fresh sessions: the test may have broken its own.
        for ens in (self.a, self.b):
            side = Ensemble(ens.connect_string, [("digest", "orch:s3cret")], make_client(ens.connect_string))
            try:
                for root in [self.root, *self.extra_roots]:
                    delete_tree(side, root)
            finally:
                side.close()


def orchestrator(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def side(hosts: str, session_timeout: float = 10.0) -> Ensemble:
    from orchestrator.services.zk.tree import connect
    return connect(hosts, [("digest", "orch:s3cret")], timeout=15, session_timeout=session_timeout)


def start_engine(zk: Pair, roots: list[str], ephemeral: str = "mirror", session_timeout: float = 10.0,
                 resync_interval: float = 0, watch_mode: str = "auto"):
    """An in-process sync engine on its own sessions, stopped by the test's teardown. Debian's ZooKeeper
    (3.8) supports persistent recursive watches: "auto" must have chosen them."""
    from orchestrator.services.zk.engine import SyncEngine
    source, target = side(zk.a.connect_string, session_timeout), side(zk.b.connect_string, session_timeout)
    engine = SyncEngine(source, target, roots, ephemeral=ephemeral, resync_interval=resync_interval,
                        watch_mode=watch_mode).start()
    zk.engines.append(engine)
    assert engine.bootstrapped.wait(60), "bootstrap did not finish"
    assert engine.recursive == (watch_mode != "per-node")
    return engine


def converged(zk: Pair, roots: list[str], timeout: float = 30.0, **kw):
    """Poll until verify reports the subtrees identical; returns the report."""
    from orchestrator.services.zk.verify import verify
    return wait_until(lambda: (lambda r: r if r.identical else None)(verify(zk.A, zk.B, roots, **kw)),
                      timeout=timeout, interval=0.1, what=f"{roots} identical on both ensembles")


def expire_session(client: KazooClient, hosts: str) -> None:
    """Expire a live session for real: a second connection with the same id and password closes it."""
    session_id, password = client.client_id
    twin = KazooClient(hosts=hosts, client_id=(session_id, password))
    twin.start(timeout=15)
    twin.stop()
    twin.close()


def ephemeral_owners(client: KazooClient, paths: list[str]) -> set[int]:
    return {client.exists(p).ephemeralOwner for p in paths}


class Cli:
    """`orchestrator …` as a child process whose output lines can be awaited; killed at teardown."""

    def __init__(self, *args: str) -> None:
        import queue
        import threading
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None  # started with stdout=PIPE
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_line(self, needle: str, timeout: float = 60.0) -> str:
        import queue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line containing {needle!r}; output so far:\n" + "\n".join(self.lines[-40:]))

    def kill(self, sig: int) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class Writer:
    """Steady changes on the source while faults happen: creates, data changes, deletes, ephemerals."""

    def __init__(self, hosts: str, root: str, pause: float = 0.005) -> None:
        import threading
        self.client = make_client(hosts)
        self.root, self.pause = root, pause
        self.done = threading.Event()
        self.writes = 0
        self.failures = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self.thread.start()
        return self

    def _run(self) -> None:
        i = 0
        while not self.done.is_set():
            i += 1
            p = f"{self.root}/w{i % 50:02d}"
            try:
                if not self.client.exists(p):
                    self.client.create(p, f"{i}".encode(), ephemeral=(i % 5 == 0))
                elif i % 7 == 0:
                    self.client.delete(p)
                else:
                    self.client.set(p, f"{i}".encode())
                self.writes += 1
            except Exception:  # the ensemble may be electing: keep going
                self.failures += 1
                time.sleep(0.05)
            time.sleep(self.pause)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=30)
        # Ephemeral nodes stay (the session lives on) so the final comparison includes them.


class Forward:
    """A loopback TCP port forward to one ZooKeeper member: the same ensemble under another address and port,
    as a DNS alias, a Kubernetes Service or an IPv6 listener would present it. Closed by the test.

    `hold_after`: once that many bytes went from clients to the server, the forward holds every further
    byte in both directions (`held` is set) until `release()`: a command caught mid-write, deterministically,
    however fast it runs. Held bytes wait at most 120 s."""

    def __init__(self, upstream_port: int, listen_host: str = "127.0.0.1", hold_after: int | None = None) -> None:
        import socket
        import threading
        family = socket.AF_INET6 if ":" in listen_host else socket.AF_INET
        self.upstream = ("127.0.0.1", upstream_port)
        self.server = socket.socket(family, socket.SOCK_STREAM)
        self.server.bind((listen_host, 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.host = listen_host
        self.hold_after = hold_after
        self.sent_upstream = 0
        self.held = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._socks: list = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def release(self) -> None:
        self.hold_after = None
        self._flowing.set()

    def _accept(self) -> None:
        import socket
        import threading
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                conn.close()
                continue
            up.settimeout(None)
            with self._lock:
                self._socks += [conn, up]
            for a, b, upstream in ((conn, up, True), (up, conn, False)):
                threading.Thread(target=self._pump, args=(a, b, upstream), daemon=True).start()

    def _pump(self, src, dst, upstream: bool) -> None:
        import socket
        try:
            while data := src.recv(65536):
                if not self._flowing.wait(120):
                    return
                dst.sendall(data)
                if upstream:
                    with self._lock:
                        self.sent_upstream += len(data)
                        if self.hold_after is not None and self.sent_upstream >= self.hold_after:
                            self._flowing.clear()
                            self.held.set()
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):  # the other pump may have closed it already
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        self._thread.join(timeout=5)
        self._flowing.set()  # held pumps wake up and find their sockets closed
        with self._lock:
            for s in self._socks:
                s.close()
