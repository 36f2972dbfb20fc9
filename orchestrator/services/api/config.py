"""The API's config file (YAML; README "The API's config file"), and the signing keys file.

Both files come from Kubernetes Secrets and are re-read when they change (`Reloading`), so revoking a token,
removing an account or rotating the signing key needs no restart. A file that becomes invalid keeps the last
good version in force (and the error is logged once): a bad edit must not lock every operator out.
"""
from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator import strict_yaml
from orchestrator.contracts.api import AUDIT_WINDOW, Role
from orchestrator.errors import InputError

ACCOUNT_NAME = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
MIN_KEY_BYTES = 32          # HS256 wants a key at least as long as its output


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Strict):
    name: Annotated[str, Field(pattern=ACCOUNT_NAME)]
    role: Role
    password_hash: Annotated[str, Field(min_length=1)]

    @field_validator("password_hash")
    @classmethod
    def _argon2id(cls, value: str) -> str:
        if not value.startswith("$argon2id$"):
            raise ValueError("must be an argon2id hash (orchestrator api hash-password)")
        return value


class LoginLimits(_Strict):
    # Failed logins allowed per window, per account and per source address (per replica).
    per_account: int = Field(5, ge=1)
    per_source: int = Field(20, ge=1)
    window_seconds: float = Field(300.0, gt=0)


class ZooKeeperTarget(_Strict):
    servers: list[str] = Field(default_factory=list)     # host:port, each asked with srvr and mntr
    timeout_seconds: float = Field(2.0, gt=0, le=30)
    # A mounted Secret directory with ca.crt (and optionally tls.crt + tls.key): `servers` are then secure
    # client ports, spoken to over TLS with the certificate verified (orchestrator/services/zk/tls.py).
    tls_dir: str | None = None


class MesosTarget(_Strict):
    masters: list[str] = Field(default_factory=list)     # http://host:5050
    credentials_file: str | None = None                  # "principal secret" (mounted Secret)


class MarathonTarget(_Strict):
    urls: list[str] = Field(default_factory=list)
    credentials_file: str | None = None                  # "user:password" (Marathon's --http_credentials format)


class CanaryGateQuery(_Strict):
    name: str
    query: str
    threshold: str          # e.g. "< 0.01": a comparison and a number, as the AnalysisTemplate says


class PrometheusTarget(_Strict):
    url: str | None = None
    canary_gates: list[CanaryGateQuery] = Field(default_factory=list)


class AutoscalerTarget(_Strict):
    # The Marathon scaler's store: its znode path (needs `zookeeper.servers`) or its directory. The API reads
    # the effective policies from it and writes operators' bound/pause overrides to it.
    znode: str | None = None
    directory: str | None = None
    # With ZooKeeper authentication: the API's own digest identity for the znodes, one `digest:user:password`
    # line (mounted Secret; never env/argv). The scaler lets it read `state` and read/write `overrides` only.
    credentials_file: str | None = None


class ApiConfig(_Strict):
    signing_key_file: str
    accounts: list[Account] = Field(default_factory=list)
    revoked_tokens: list[str] = Field(default_factory=list)     # token ids (jti) denied everywhere
    ui_dir: str | None = None
    audit_window: int = Field(AUDIT_WINDOW, ge=100, le=1_000_000)
    login_limits: LoginLimits = Field(default_factory=LoginLimits)
    zookeeper: ZooKeeperTarget = Field(default_factory=ZooKeeperTarget)
    mesos: MesosTarget = Field(default_factory=MesosTarget)
    marathon: MarathonTarget = Field(default_factory=MarathonTarget)
    zk_sync_metrics_url: str | None = None
    prometheus: PrometheusTarget = Field(default_factory=PrometheusTarget)
    autoscaler: AutoscalerTarget = Field(default_factory=AutoscalerTarget)
    status_cache_seconds: float = Field(5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _unique_accounts(self) -> ApiConfig:
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"accounts: duplicate name(s) {', '.join(dupes)}")
        return self

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def load_config(path: str | Path) -> ApiConfig:
    path = Path(path)
    # Strict: size-bounded UTF-8, no duplicate keys, no alias bombs (InputError naming file and line).
    data = strict_yaml.load_file(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of keys")
    try:
        config = ApiConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{path}: {_first_error(exc)}") from None
    key_file = Path(config.signing_key_file)
    if not key_file.is_absolute():  # relative to the config file, like every other path in it
        config = config.model_copy(update={"signing_key_file": str(path.parent / key_file)})
    return config


class SigningKeys(BaseModel):
    """Keys by id; `current` signs, every listed key verifies (rotation: add the new key first, later drop
    the old one). File format: one `<key-id> <secret>` per line, the first line is the current key;
    `#` starts a comment. Secrets are at least 32 characters."""

    model_config = ConfigDict(frozen=True)
    current: str
    keys: dict[str, bytes]

    def __repr__(self) -> str:  # never print a secret
        return f"SigningKeys(current={self.current!r}, ids={sorted(self.keys)})"

    __str__ = __repr__


def parse_keys(text: str, where: str) -> SigningKeys:
    keys: dict[str, bytes] = {}
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{where}:{number}: expected '<key-id> <secret>'")
        kid, secret = parts
        if len(secret.encode()) < MIN_KEY_BYTES:
            raise InputError(f"{where}:{number}: key {kid!r} is shorter than {MIN_KEY_BYTES} characters")
        if kid in keys:
            raise InputError(f"{where}:{number}: key id {kid!r} appears twice")
        keys[kid] = secret.encode()
        current = current or kid
    if not keys:
        raise InputError(f"{where}: no signing key")
    return SigningKeys(current=current, keys=keys)


def load_keys(path: str | Path) -> SigningKeys:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the signing keys ({exc.strerror})") from None
    return parse_keys(text, str(path))


def random_keys() -> SigningKeys:
    """A fresh key for the demo (nothing persisted)."""
    return SigningKeys(current="demo", keys={"demo": secrets.token_urlsafe(48).encode()})


T = TypeVar("T")


class Reloading(Generic[T]):
    """A value loaded from a file and re-loaded when the file changes, checked at most once per `every` s.

    Kubernetes updates a mounted Secret by swapping a symlink, so the check compares the resolved path's
    mtime, size and inode rather than trusting inotify on the original path.
    """

    def __init__(self, path: str | Path | None, load: Callable[[str | Path], T], *, initial: T | None = None,
                 every: float = 1.0) -> None:
        self.path = path
        self._load = load
        self._every = every
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._stamp = self._stat()
        self.value: T = initial if initial is not None else load(path)  # type: ignore[arg-type]
        self.reloads = 0
        self.last_error: str | None = None

    def _stat(self) -> tuple[float, int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(os.path.realpath(self.path))
        except OSError:
            return None
        return (st.st_mtime, st.st_size, st.st_ino)

    def get(self) -> T:
        now = time.monotonic()
        if self.path is None or now - self._checked < self._every:
            return self.value
        with self._lock:
            if now - self._checked < self._every:
                return self.value
            self._checked = now
            stamp = self._stat()
            if stamp is not None and stamp != self._stamp:
                try:
                    self.value = self._load(self.path)
                    self._stamp = stamp
                    self.reloads += 1
                    self.last_error = None
                except InputError as exc:
                    if str(exc) != self.last_error:
                        self.last_error = str(exc)
                        print(f"orchestrator api: keeping the previous version: {exc}", file=sys.stderr, flush=True)
        return self.value


def load_zk_auth(path: str | None) -> list[tuple[str, str]] | None:
    """The API's ZooKeeper identity for the scaler's store: `scheme:credential` lines of a mounted file."""
    if not path:
        return None
    from orchestrator.services.zk.tree import ZkInputError, parse_auth

    try:
        lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
        return parse_auth(lines) or None
    except OSError as exc:
        raise InputError(f"autoscaler.credentials_file {path}: {exc.strerror}") from None
    except ZkInputError:
        # Never echo the line: it holds the password.
        raise InputError(f"autoscaler.credentials_file {path}: expected 'digest:user:password' lines") from None
