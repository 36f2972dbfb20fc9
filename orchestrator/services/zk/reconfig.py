"""`orchestrator zk reconfig`: change a ZooKeeper ensemble's membership one server at a time.

ZooKeeper's dynamic reconfiguration (3.5+, `reconfigEnabled=true`) commits a new member list through
the current quorum, so old and new majorities never run side by side (a rolled static list can: two
leaders, tests/zk/test_roll.py). This tool makes one change per run, through the superuser, after
checking what ZooKeeper cannot check for us:

- `--add`: the joining server already runs and follows the current leader (as a non-voting member:
  the StatefulSet started it with the new list, docs/quorum-changes.md); adding a server that is not
  there would make the new majority depend on a missing vote;
- `--remove`: after the removal a majority of the remaining members is serving.

The change is conditional on the configuration version read before it (`from_config`): if someone
else changed the membership in between, ZooKeeper refuses and nothing happens. The superuser password
is read from a file (a mounted Secret), never from an argument or the environment.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError, RefusedError, UnreachableError
from orchestrator.services.zk.wire import server_mode

SUPERUSER = "super"
MAX_SECRET_BYTES = 4096
# `server.<id>=<host>:<peer>:<election>[:participant|:observer];[<client host>:]<client port>`
SERVER_SPEC = re.compile(r"^server\.(?P<id>\d+)=(?P<host>[^:;\s]+):(?P<peer>\d+):(?P<election>\d+)"
                         r"(?::(?P<role>participant|observer))?;(?:(?P<chost>[^:;\s]+):)?(?P<cport>\d+)$")
FOLLOWING = ("follower", "leader")


@dataclass(frozen=True)
class Member:
    id: int
    spec: str
    host: str
    client_host: str
    client_port: int
    role: str

    @property
    def client_address(self) -> tuple[str, int]:
        # `;2181` or `;0.0.0.0:2181` listens on every address: reach it at the server's host.
        host = self.client_host if self.client_host not in ("", "0.0.0.0", "::") else self.host
        return host, self.client_port


def parse_member(spec: str) -> Member:
    match = SERVER_SPEC.match(spec.strip())
    if not match:
        raise InputError(f"--add {spec!r}: not a server line 'server.<id>=<host>:<peer>:<election>:participant;"
                         "<client port>' (copy it from the zookeeper ConfigMap's zoo.cfg)")
    if int(match["id"]) < 1:
        raise InputError(f"--add {spec!r}: server ids start at 1")
    return Member(int(match["id"]), spec.strip(), match["host"], match["chost"] or "", int(match["cport"]),
                  match["role"] or "participant")


def parse_config(text: str) -> tuple[dict[int, Member], int]:
    """`/zookeeper/config` → (members by id, config version)."""
    members: dict[int, Member] = {}
    version = -1
    for line in text.splitlines():
        if line.startswith("version="):
            version = int(line.split("=", 1)[1], 16)
        elif line.startswith("server."):
            member = parse_member(line)
            members[member.id] = member
    return members, version


def format_config(members: dict[int, Member], version: int) -> str:
    voters = sum(1 for m in members.values() if m.role == "participant")
    lines = [f"version {version:x}: {voters} voting member(s), a majority is {voters // 2 + 1}"]
    return "\n".join(lines + [f"  {members[i].spec}" for i in sorted(members)])


def read_superuser_password(path: Path) -> str:
    try:
        data = path.read_bytes()[: MAX_SECRET_BYTES + 1]
    except OSError as exc:
        raise InputError(f"--superuser-file {path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_SECRET_BYTES:
        raise InputError(f"--superuser-file {path}: larger than {MAX_SECRET_BYTES} bytes: not a password file")
    text = data.decode("utf-8", errors="strict").strip() if data.isascii() else ""
    if not text or "\n" in text:
        raise InputError(f"--superuser-file {path}: must hold the superuser password on one line")
    return text


def register(sub: Any) -> None:
    """Adds `reconfig` under `orchestrator zk`."""
    p = sub.add_parser("reconfig", help="add or remove ONE ensemble member through ZooKeeper's reconfig API",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", required=True, metavar="CONNECT",
                   help="the ensemble, host:port[,host:port…] (e.g. the zookeeper-client Service)")
    p.add_argument("--superuser-file", type=Path, metavar="FILE",
                   help="file holding the superuser password (the credentials tier's Secret, mounted); "
                        "required for --add and --remove")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--show", action="store_true", help="print the current members and configuration version")
    what.add_argument("--add", metavar="SERVER_LINE",
                      help="the one server to add, as its zoo.cfg line: server.<id>=<host>:<peer>:<election>:"
                           "participant;<client port>")
    what.add_argument("--remove", type=int, metavar="ID", help="the id (myid) of the one server to remove")
    p.add_argument("--check-address", metavar="HOST:PORT",
                   help="where this tool reaches the joining server's client port when the address in its "
                        "server line is not reachable from here (e.g. through kubectl port-forward)")
    p.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                   help="connect and per-check timeout (default 15, at most 600)")
    p.set_defaults(func=cmd_reconfig)


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--check-address {value!r}: must be HOST:PORT")
    return host, int(port)


def cmd_reconfig(args: argparse.Namespace) -> int:
    if not 0 < args.timeout <= 600:
        raise InputError(f"--timeout {args.timeout:g}: must be a number of seconds > 0 and at most 600")
    joining = parse_member(args.add) if args.add else None
    check = _address(args.check_address) if args.check_address else None
    if args.remove is not None and args.remove < 1:
        raise InputError(f"--remove {args.remove}: server ids start at 1")
    password = None
    if not args.show:
        if args.superuser_file is None:
            raise InputError("--superuser-file: required for --add and --remove (reconfig is the superuser's)")
        password = read_superuser_password(args.superuser_file)
    out = reconfigure(args.connect, password, joining, args.remove, check, args.timeout)
    sys.stdout.write(out + "\n")
    return 0


def reconfigure(connect: str, password: str | None, joining: Member | None, leaving: int | None,
                check_address: tuple[str, int] | None = None, timeout: float = 15.0) -> str:
    """Show the membership, or make one change; returns the text to print. Raises the errors of the table."""
    import logging

    from kazoo.client import KazooClient
    from kazoo.exceptions import (
        BadVersionError,
        NewConfigNoQuorumError,
        NoAuthError,
        ReconfigDisabledError,
        ReconfigInProcessError,
        UnimplementedError,
    )
    from kazoo.handlers.threading import KazooTimeoutError

    logging.getLogger("kazoo.client").setLevel(logging.CRITICAL)  # one line on failure, from us
    client = KazooClient(hosts=connect, timeout=timeout)
    try:
        client.start(timeout=timeout)
    except KazooTimeoutError:
        client.close()
        raise UnreachableError(f"--connect {connect}: no ZooKeeper server answered within {timeout:g} s") from None
    try:
        if password is not None:
            client.add_auth("digest", f"{SUPERUSER}:{password}")
        data, _ = client.get("/zookeeper/config")
        members, version = parse_config(data.decode())
        before = format_config(members, version)
        if joining is None and leaving is None:
            return before
        if joining is not None:
            _check_join(members, joining, check_address or joining.client_address, timeout)
            change = {"joining": joining.spec, "leaving": None}
            what = f"added server.{joining.id}"
        else:
            assert leaving is not None
            _check_leave(members, leaving, timeout)
            change = {"joining": None, "leaving": str(leaving)}
            what = f"removed server.{leaving}"
        try:
            new, _ = client.reconfig(new_members=None, from_config=version, **change)
        except NoAuthError:
            raise RefusedError("ZooKeeper refused the reconfiguration: the superuser password in "
                               "--superuser-file is not the ensemble's (NoAuth)") from None
        except BadVersionError:
            raise RefusedError("the membership changed since it was read (someone else reconfigured): "
                               "nothing done; run --show and start again") from None
        except ReconfigInProcessError:
            raise RefusedError("another reconfiguration is in progress: nothing done; try again") from None
        except NewConfigNoQuorumError:
            raise RefusedError("ZooKeeper refused: the new configuration has no quorum of connected "
                               "servers; nothing done") from None
        except (ReconfigDisabledError, UnimplementedError):
            raise RefusedError("the ensemble has reconfigEnabled=false: roll out this release's zoo.cfg "
                               "first (docs/quorum-changes.md)") from None
        after_members, after_version = parse_config(new.decode())
        return f"{what}\nbefore: {before}\nafter:  {format_config(after_members, after_version)}"
    finally:
        client.stop()
        client.close()


def _check_join(members: dict[int, Member], joining: Member, address: tuple[str, int], timeout: float) -> None:
    if joining.id in members:
        raise RefusedError(f"server.{joining.id} is already a member: {members[joining.id].spec}")
    mode = server_mode(address, timeout)
    if mode not in FOLLOWING:
        state = "does not answer" if mode is None else f"is {mode}"
        raise RefusedError(f"server.{joining.id} at {address[0]}:{address[1]} {state}: add a server only once it "
                           "runs and follows the current leader (its pod Ready), or the new majority would count "
                           "a missing vote")


def _check_leave(members: dict[int, Member], leaving: int, timeout: float) -> None:
    if leaving not in members:
        raise RefusedError(f"server.{leaving} is not a member (members: {', '.join(map(str, sorted(members)))})")
    remaining = [m for i, m in members.items() if i != leaving and m.role == "participant"]
    if not remaining:
        raise RefusedError(f"server.{leaving} is the last voting member: an ensemble cannot remove itself")
    serving = [m.id for m in remaining if server_mode(m.client_address, timeout) in FOLLOWING]
    need = len(remaining) // 2 + 1
    if len(serving) < need:
        raise RefusedError(f"after removing server.{leaving} only {len(serving)} of {len(remaining)} remaining members "
                           f"are serving (need {need}): bring them back first")
