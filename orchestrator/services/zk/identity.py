"""Whether two ZooKeeper sessions talk to the same ensemble, decided by the servers and not by spelling.

`127.0.0.1:2181`, `localhost:2181`, `[::1]:2181`, one member or the whole member list, a DNS alias or a
port forward all reach the same data; comparing connect strings cannot tell. So a probe: an ephemeral znode
with a random name is created through one session and looked for through the other, after a `sync` so that
a lagging follower cannot hide it. It works on every ZooKeeper version a migration may start from (3.4
included) and needs no four-letter word at all (only `ruok,srvr,mntr` are whitelisted in the platform).

The probe lives at the top of the ensemble (`/`), outside any chroot, because two chrooted sessions may not
see a common path otherwise; when `/` does not accept a create, the ancestors of the roots being compared,
then the roots themselves, are tried. It is ephemeral, so it vanishes with its session even if the delete in
the cleanup never happens, and the copy, sync and verify readers never see its name (tree.PROBE_PREFIX).

`ensure_distinct` is the guard copy, sync, verify and migrate call before touching anything. On the same
ensemble it refuses overlapping roots (equal, or one under the other: a copy into itself grows without
bound, a sync onto its own source steals live ephemeral nodes, a verify compares a tree with itself). It
allows disjoint roots on one ensemble (e.g. `--source zk/blue --target zk/green`): the two subtrees share no
node, so neither side's writes, deletes or ephemeral nodes can touch the other, exactly as across ensembles.
"""
from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NodeExistsError, NoNodeError

from orchestrator.errors import RefusedError, UnreachableError
from orchestrator.services.zk.tls import kazoo_kwargs, tls_of
from orchestrator.services.zk.tree import PROBE_PREFIX


def _connect_string(client: KazooClient) -> str:
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in client.hosts)


@contextlib.contextmanager
def _unchrooted(client: KazooClient, timeout: float = 15.0) -> Iterator[KazooClient]:
    """The client itself when it has no chroot, else a short-lived session on the same servers at `/`."""
    if not client.chroot:
        yield client
        return
    twin = KazooClient(hosts=_connect_string(client), auth_data=list(client.auth_data) or None,
                       **kazoo_kwargs(tls_of(client)))  # the same TLS as the session it stands in for
    try:
        twin.start(timeout=timeout)
    except Exception as exc:  # kazoo's timeout type, or a socket error
        with contextlib.suppress(Exception):
            twin.close()
        raise UnreachableError(f"cannot open a probe session on {_connect_string(client)!r}: {exc}") from None
    try:
        yield twin
    finally:
        with contextlib.suppress(Exception):
            twin.stop()
            twin.close()


def _probe_parents(extra: Sequence[str]) -> list[str]:
    """`/`, then the ancestors of `extra`, then the `extra` paths themselves (a target root we may write)."""
    out = ["/"]
    for p in extra:
        q = p
        while q not in ("", "/"):
            q = q.rsplit("/", 1)[0] or "/"
            if q not in out:
                out.append(q)
    out += [p for p in extra if p not in out]
    return out


def _look_for_probe(writer: KazooClient, reader: KazooClient, parent: str) -> bool | None:
    """True/False: whether the probe written through `writer` was seen through `reader`.
    None: the probe could not be written under `parent` (no permission, or no such node)."""
    path = ("" if parent == "/" else parent) + "/" + PROBE_PREFIX + secrets.token_hex(16)
    try:
        writer.create(path, b"", ephemeral=True)
    except (NoAuthError, NoNodeError):
        return None
    except NodeExistsError:  # 128 random bits: not ours only by a miracle; try another place
        return None
    try:
        reader.sync(path)  # the reader's server catches up with the leader first
        return reader.exists(path) is not None
    finally:
        with contextlib.suppress(Exception):
            writer.delete(path)


def same_ensemble(a: KazooClient, b: KazooClient, probe_parents: Sequence[str] = ()) -> bool:
    """Whether the started sessions `a` and `b` reach the same ensemble (their chroots do not matter).

    The probe is created at `/`, else under an ancestor of `probe_parents` or one of them (absolute paths,
    e.g. the roots about to be written), in either direction. RefusedError when no place accepts a probe: without
    the answer no caller may go on.
    """
    with _unchrooted(a) as ra, _unchrooted(b) as rb:
        for parent in _probe_parents(probe_parents):
            for writer, reader in ((ra, rb), (rb, ra)):
                seen = _look_for_probe(writer, reader, parent)
                if seen is not None:
                    return seen
    raise RefusedError("cannot tell whether source and target are the same ensemble: neither accepts a probe "
                       "znode under / or the roots' parents (credentials with create permission are needed)")


def absolute(client: KazooClient, path: str) -> str:
    """`path` as seen through the client's chroot, as an absolute path on its ensemble."""
    chroot = (client.chroot or "").rstrip("/")
    if not chroot:
        return path
    return chroot if path == "/" else chroot + path


def _overlap(x: str, y: str) -> bool:
    def under(p: str, root: str) -> bool:
        return root == "/" or p == root or p.startswith(root + "/")
    return under(x, y) or under(y, x)


def ensure_distinct(source: KazooClient, source_root: str | Sequence[str], target: KazooClient,
                    target_root: str | Sequence[str]) -> None:
    """RefusedError when source and target are the same ensemble and a source root and a target root overlap
    (equal, or one under the other), chroots included. Disjoint roots on one ensemble are allowed."""
    src_roots = [source_root] if isinstance(source_root, str) else list(source_root)
    dst_roots = [target_root] if isinstance(target_root, str) else list(target_root)
    src_abs = [absolute(source, r) for r in src_roots]
    dst_abs = [absolute(target, r) for r in dst_roots]
    overlapping = [(s, d) for s in src_abs for d in dst_abs if _overlap(s, d)]
    if not overlapping:
        return  # nothing to ask: even on one ensemble, disjoint subtrees are safe
    # The probe is written through the target first: the side the command writes anyway, not a live source.
    if not same_ensemble(target, source, probe_parents=dst_abs + src_abs):
        return
    s, d = overlapping[0]
    how = "is" if s == d else ("is under" if d.startswith(s.rstrip("/") + "/") or s == "/" else "contains")
    raise RefusedError(f"source and target are the same ensemble, and the target root {d} {how} the source "
                       f"root {s}: copying would overwrite or nest the tree in itself (use another ensemble, "
                       "or disjoint roots)")
