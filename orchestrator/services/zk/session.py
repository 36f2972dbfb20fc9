"""Opening and closing ZooKeeper sessions for the commands (zk copy/sync/verify/snapshot/restore, migrate).

Errors are mapped onto orchestrator/errors.py here, once: a malformed connect string or credential is
bad input (exit 2), an ensemble that does not answer within the connect timeout is unreachable (exit 5).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable

from orchestrator.errors import InputError, UnreachableError
from orchestrator.services.zk.tls import ZkTls, diagnose
from orchestrator.services.zk.tree import Ensemble, ZkInputError, connect, parse_auth

# In the platform, credentials come from a Secret as this variable (one SCHEME:CREDENTIAL per line),
# never on the command line, where every local user could read them in the process list.
AUTH_ENV = "ORCHESTRATOR_ZK_AUTH"


def auth_from(cli_items: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Credentials from `--auth` items plus ORCHESTRATOR_ZK_AUTH, or InputError naming the bad item."""
    env_items = [line.strip() for line in os.environ.get(AUTH_ENV, "").splitlines() if line.strip()]
    return parse_auth(list(cli_items or []) + env_items)


def check_timeout(name: str, value: float) -> float:
    """A timeout or interval option must be a finite number > 0 (InputError otherwise)."""
    if not value > 0 or value == float("inf"):
        raise InputError(f"{name} {value}: must be a number of seconds greater than 0")
    return value


def open_client(hosts: str, auth: list[tuple[str, str]] | None = None, timeout: float = 15.0,
                session_timeout: float = 10.0, label: str = "ZooKeeper", tls: ZkTls | None = None,
                prefer_leader: bool = False) -> Ensemble:
    """A started session on `hosts` (connect string, optional /chroot), over TLS when `tls` is given.

    InputError for a malformed connect string or a non-positive timeout, UnreachableError when no member
    answers within `timeout` seconds (naming the TLS failure, e.g. an untrusted certificate, when that is
    why). `label` names the side in messages, e.g. "source" or "target".
    """
    check_timeout("connect timeout", timeout)
    check_timeout("session timeout", session_timeout)
    try:
        with warnings.catch_warnings():
            # kazoo warns on stderr when the chroot does not exist; the commands report a missing root instead
            warnings.simplefilter("ignore", UserWarning)
            return connect(hosts, auth, timeout=timeout, session_timeout=session_timeout, tls=tls,
                           prefer_leader=prefer_leader)
    except ZkInputError as exc:
        raise InputError(f"{label} ensemble: {exc}") from None
    except Exception as exc:  # kazoo raises its own timeout type, or socket errors for unknown hosts
        # Kazoo retries a failed handshake until the timeout and only logs why; one handshake of our own
        # tells the operator (a wrong CA, a certificate without this host name, a plain port).
        why = _tls_failure(hosts, tls, timeout) if tls is not None else None
        raise UnreachableError(f"cannot connect to the {label} ensemble {hosts!r} within {timeout:g}s "
                               f"({why or f'{type(exc).__name__}: {exc}'})") from None


def _tls_failure(hosts: str, tls: ZkTls, timeout: float) -> str | None:
    from kazoo.hosts import collect_hosts

    try:
        servers, _ = collect_hosts(hosts)
        return diagnose(servers, tls, min(timeout, 5.0))
    except Exception:  # a diagnosis must never hide the original error
        return None


def close_client(client: Ensemble | None) -> None:
    """Stop and close a session; safe on None and on a session already closed."""
    if client is None:
        return
    # Best effort: a session we cannot close cleanly expires on the server anyway.
    with contextlib.suppress(Exception):
        client.close()


def close_clients(clients: Iterable[Ensemble | None]) -> None:
    for c in clients:
        close_client(c)
