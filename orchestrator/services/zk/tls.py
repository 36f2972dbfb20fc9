"""TLS to ZooKeeper's secure client port, in one place for every service (sync engine, API, scaler, zk tools).

The client side of docs/zookeeper-tls.md: a directory laid out as a kubernetes.io/tls Secret is mounted
into the pod; `ca.crt` (required) is the CA that signed the servers' certificate, and `tls.crt` + `tls.key`
(optional) are a client certificate, presented only if both are there (for a server with
`ssl.clientAuth=need`). Only the paths travel in flags and config; the files never leave the volume.
The server's certificate is always verified, host name included (the connect string's names or IPs must be
in its SANs): TLS without verification would only hide a man in the middle.
"""
from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"


@dataclass(frozen=True)
class ZkTls:
    """Where a client's TLS files are: the CA bundle, and an optional client certificate and key."""

    ca: str
    certfile: str | None = None
    keyfile: str | None = None

    @classmethod
    def from_dir(cls, directory: str, option: str = "--tls") -> ZkTls:
        """The files of a mounted Secret directory; InputError naming `option` when unusable."""
        d = Path(directory)
        if not d.is_dir():
            raise InputError(f"{option} {directory}: not a directory (mount the TLS Secret's {CA_FILE} there)")
        ca = d / CA_FILE
        if not os.access(ca, os.R_OK):
            raise InputError(f"{option} {directory}: no readable {CA_FILE} (the CA that signed ZooKeeper's certificate)")
        cert, key = d / CERT_FILE, d / KEY_FILE
        has_cert, has_key = cert.exists(), key.exists()
        if has_cert != has_key:
            raise InputError(f"{option} {directory}: {CERT_FILE} and {KEY_FILE} go together (a client certificate "
                             f"needs its key); found only {CERT_FILE if has_cert else KEY_FILE}")
        tls = cls(str(ca), str(cert) if has_cert else None, str(key) if has_key else None)
        try:
            tls.context()  # a file that is not PEM is bad input now, not a retry loop later
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise InputError(f"{option} {directory}: cannot load the TLS files ({exc})") from None
        return tls

    @classmethod
    def of(cls, directory: str | None, option: str = "--tls") -> ZkTls | None:
        return None if directory is None else cls.from_dir(directory, option)

    def kazoo_kwargs(self) -> dict[str, Any]:
        """KazooClient keyword arguments: TLS with the server certificate and its host name verified."""
        return {"use_ssl": True, "ca": self.ca, "certfile": self.certfile, "keyfile": self.keyfile,
                "verify_certs": True, "check_hostname": True}

    def context(self) -> ssl.SSLContext:
        """The same policy as kazoo_kwargs, for our own sockets (bulk reads, four-letter words).

        Only our CA is trusted (kazoo also loads the system's; a public CA has no business vouching for a
        cluster-internal ZooKeeper, so our own sockets do not)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(self.ca)
        if self.certfile and self.keyfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx


def kazoo_kwargs(tls: ZkTls | None) -> dict[str, Any]:
    return {} if tls is None else tls.kazoo_kwargs()


def tls_of(client: Any) -> ZkTls | None:
    """The TLS settings a KazooClient was built with (to open a twin session on the same servers)."""
    if not getattr(client, "use_ssl", False):
        return None
    return ZkTls(client.ca, client.certfile, client.keyfile)


def diagnose(hosts: list[tuple[str, int]], tls: ZkTls, timeout: float) -> str | None:
    """Why a TLS session could not be opened, from one handshake per server: the first TLS failure
    (e.g. "certificate verify failed"), or None when no handshake failed for a TLS reason."""
    ctx = tls.context()
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout) as raw, \
                    ctx.wrap_socket(raw, server_hostname=host):
                pass
        except ssl.SSLCertVerificationError as exc:
            return (f"TLS handshake with {host}:{port} failed: certificate verify failed: {exc.verify_message} "
                    f"(is {tls.ca} the CA that signed the server's certificate, for this host name?)")
        except ssl.SSLError as exc:  # e.g. a plain port answering a TLS hello
            return f"TLS handshake with {host}:{port} failed: {exc.reason or exc}"
        except OSError:
            continue  # not a TLS problem: the caller's message (unreachable) stands
    return None
