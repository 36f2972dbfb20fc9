"""Where the scaler keeps what must survive a restart, and the policy store the API calls.

Two documents, each with one writer:

- `state` (written only by the active scaler): per-app stabilization history and scale events, write-ahead
  scale intents (so a scaler SIGKILLed between its decision and Marathon's answer neither loses nor repeats
  the scale), the healer's budgets and backoffs, the last decisions and the effective policies (for the API's
  read-only view).
- `overrides` (written by the API, read by the scaler each cycle): operators' bounds and pause per app.

Backends: a ZooKeeper znode pair under a path of its own (the platform's reliable store; with authentication
the scaler's digest user has ALL, the API's digest user READ on `state` and READ|WRITE on `overrides`; the
scaler creates both at start) or a directory (one replica with a volume, local runs, tests). Documents are
zlib-compressed JSON (500 apps of history is ~200 KB of JSON, far under the 1 MB znode limit once compressed). ZooKeeper writes
are conditional on the version read: a scaler that lost its lock cannot overwrite its successor's state.

For the API (issue 10)::

    from orchestrator.services.marathon.store import PolicyStore, open_store
    store = PolicyStore(open_store(zk=kazoo_client, path="/orchestrator/marathon-scaler", owner=False))
    store.update_override("/shop/web", min_instances=4, paused=None)   # validated; returns the Override
    store.view()  # {"overrides": {...}, "policies": {...}, "decisions": [...]} for GET routes
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from orchestrator.errors import InputError, RefusedError
from orchestrator.services.marathon.policy import Override

STATE, OVERRIDES = "state", "overrides"
MAX_DECISIONS = 500


class Store(Protocol):
    def read(self, name: str) -> tuple[dict[str, Any], int]:
        """The document and its version (-1 when it does not exist yet)."""

    def write(self, name: str, data: dict[str, Any], version: int) -> int:
        """Write if the stored version is still `version` (RefusedError otherwise); returns the new version."""


def _encode(data: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(data, separators=(",", ":"), sort_keys=True).encode(), 6)


def _decode(raw: bytes, where: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(zlib.decompress(raw))
    except (zlib.error, ValueError):
        raise InputError(f"{where}: not a scaler state document (corrupt or written by something else)") from None
    return data if isinstance(data, dict) else {}


class MemoryStore:
    """For dry runs and unit tests: nothing survives the process."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}

    def read(self, name: str) -> tuple[dict[str, Any], int]:
        data, version = self.docs.get(name, ({}, -1))
        return json.loads(json.dumps(data)), version

    def write(self, name: str, data: dict[str, Any], version: int) -> int:
        if self.docs.get(name, ({}, -1))[1] != version:
            raise RefusedError(f"scaler {name} changed under us (another scaler is active?)")
        self.docs[name] = (json.loads(json.dumps(data)), version + 1)
        return version + 1


class FileStore:
    """A directory: `<name>.state` files replaced atomically (write, fsync, rename)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"state directory {self.dir}: {exc.strerror}") from None

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.state"

    def read(self, name: str) -> tuple[dict[str, Any], int]:
        path = self._path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}, -1
        data = _decode(raw, str(path))
        return data, int(data.get("_version", 0))

    def write(self, name: str, data: dict[str, Any], version: int) -> int:
        current = self.read(name)[1]
        if current != version:
            raise RefusedError(f"{self._path(name)} changed under us (version {current}, expected {version}): "
                               "another scaler is active?")
        new = max(version, 0) + 1
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_encode({**data, "_version": new}))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path(name))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return new


class ScalerNotStarted(RefusedError):
    """The API would have to create one of the scaler's documents: only the scaler does (with their ACLs)."""


# The API's digest ACL id, `orchestrator-api:<base64 sha1(user:password)>`: a hash, never the password.
_DIGEST_ID = re.compile(r"^[^:\s]+:[A-Za-z0-9+/]{27}=$")


def document_acls(api_acl_id: str | None) -> dict[str, list[Any]]:
    """Each document's ACL when authentication is on: the scaler (the creator, `auth` = the session's digest
    identity) has ALL, ADMIN included, so it can (re)set these ACLs; the API may read the state (its read-only
    view) and read and write only the overrides (operators' bounds and pause). Nobody else has anything."""
    from kazoo.security import ACL, CREATOR_ALL_ACL, Id, Permissions

    if api_acl_id is None:
        return {STATE: list(CREATOR_ALL_ACL), OVERRIDES: list(CREATOR_ALL_ACL)}
    if not _DIGEST_ID.match(api_acl_id):
        raise InputError("the API's ZooKeeper ACL id: expected 'user:<base64 sha1>' (its digest, e.g. "
                         "kazoo.security.make_digest_acl_credential), not a password")
    api = Id("digest", api_acl_id)
    return {STATE: [*CREATOR_ALL_ACL, ACL(Permissions.READ, api)],
            OVERRIDES: [*CREATOR_ALL_ACL, ACL(Permissions.READ | Permissions.WRITE, api)]}


class ZkStore:
    """Znodes `<path>/state` and `<path>/overrides` (kazoo client given, already started and authenticated).

    `owner=True` (the scaler): creates its path and both documents when missing and sets the documents' ACLs
    (document_acls; also fixing nodes an older version created creator-only) when the client authenticates.
    `owner=False` (the API): creates nothing; writing a document that does not exist raises ScalerNotStarted.
    """

    def __init__(self, client: Any, path: str, *, owner: bool = True, api_acl_id: str | None = None) -> None:
        from kazoo.exceptions import NodeExistsError
        from kazoo.security import ACL, ANYONE_ID_UNSAFE, Permissions

        self.client = client
        self.path = "/" + path.strip("/")
        self.owner = owner
        if not owner:
            return
        # Ancestors (e.g. /orchestrator) are shared with other services: anyone may read them and create their
        # own subtree there, nobody else may delete ours. Our own node takes the client's default ACL
        # (creator-only for the scaler's digest user).
        shared = [ACL(Permissions.READ | Permissions.CREATE, ANYONE_ID_UNSAFE)]
        parts = self.path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            node = "/" + "/".join(parts[:depth])
            if client.exists(node) is None:
                with contextlib.suppress(NodeExistsError):  # created meanwhile by another service
                    client.create(node, b"", acl=shared if depth < len(parts) else None)
        # Without authentication the documents take the client's default (world-open, as everything then).
        acls = document_acls(api_acl_id) if getattr(client, "auth_data", None) else {}
        for name in (STATE, OVERRIDES):
            node = f"{self.path}/{name}"
            try:
                client.create(node, _encode({}), acl=acls.get(name))
            except NodeExistsError:  # a previous run (or an older version, creator-only) created it
                if name in acls:
                    client.set_acls(node, acls[name])

    def read(self, name: str) -> tuple[dict[str, Any], int]:
        from kazoo.exceptions import NoNodeError

        try:
            raw, stat = self.client.get(f"{self.path}/{name}")
        except NoNodeError:
            return {}, -1
        return _decode(raw, f"znode {self.path}/{name}"), int(stat.version)

    def write(self, name: str, data: dict[str, Any], version: int) -> int:
        from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

        node = f"{self.path}/{name}"
        try:
            if version < 0:
                if not self.owner:
                    raise ScalerNotStarted(f"znode {node} does not exist: the scaler has not started yet "
                                           "(it creates its documents at start)")
                self.client.create(node, _encode(data))
                return 0
            return int(self.client.set(node, _encode(data), version=version).version)
        except NoNodeError:
            raise ScalerNotStarted(f"znode {node} disappeared: the scaler has not started yet") from None
        except (BadVersionError, NodeExistsError):
            raise RefusedError(f"znode {node} changed under us: another scaler is active (lock lost?)") from None


def open_store(*, directory: str | None = None, zk: Any = None, path: str = "/orchestrator/marathon-scaler",
               owner: bool = True, api_acl_id: str | None = None) -> Store:
    """The scaler opens its store as the owner (api_acl_id: who else may use it, see document_acls); the API
    with owner=False."""
    if zk is not None:
        return ZkStore(zk, path, owner=owner, api_acl_id=api_acl_id)
    if directory:
        return FileStore(directory)
    return MemoryStore()


class PolicyStore:
    """The API's entry point: read the scaler's view, change an app's bounds or pause it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def overrides(self) -> dict[str, Override]:
        data, _ = self.store.read(OVERRIDES)
        return {app: Override.model_validate(o) for app, o in data.get("apps", {}).items()}

    def update_override(self, app_id: str, *, min_instances: int | None = None, max_instances: int | None = None,
                        paused: bool | None = None, clear: bool = False) -> Override | None:
        """Set (or with clear=True remove) an app's override; InputError on invalid values. Retries once on a
        concurrent write."""
        from orchestrator.clients.marathon import normalize_app_id

        app_id = normalize_app_id(app_id)
        try:
            override = Override(min_instances=min_instances, max_instances=max_instances, paused=paused)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(f"override for {app_id}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        if override.min_instances and override.max_instances and override.min_instances > override.max_instances:
            raise InputError(f"override for {app_id}: min_instances > max_instances")
        for attempt in range(2):
            data, version = self.store.read(OVERRIDES)
            apps = dict(data.get("apps", {}))
            if clear:
                apps.pop(app_id, None)
            else:
                apps[app_id] = override.model_dump(exclude_none=True)
            try:
                self.store.write(OVERRIDES, {"apps": apps}, version)
                return None if clear else override
            except RefusedError:
                if attempt:
                    raise
        return None

    def view(self) -> dict[str, Any]:
        state, _ = self.store.read(STATE)
        return {"overrides": {k: v.model_dump(exclude_none=True) for k, v in self.overrides().items()},
                "policies": state.get("policies", {}), "decisions": state.get("decisions", []),
                "heal": {"circuit_open": bool(state.get("heal", {}).get("circuit_open", False))}}
