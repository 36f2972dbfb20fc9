"""The migration's configuration and state file: validated on load, written atomically with mode 0600,
guarded by an exclusive lock, and never holding a credential.

* **Lock.** Every command that changes the state (start, advance, rollback) holds `fcntl.flock` on
  `<state>.lock` for its whole run; a second one is refused at once ("another migrate holds the lock
  (pid N)", exit 6). The lock file stays (deleting it would let two processes lock two different files).
* **Atomic writes.** A new state goes to a temporary file in the same directory (created 0600), is
  fsync'd and renamed over the old one, and the directory is fsync'd: a crash leaves the old or the new
  state, and a reader never sees half a file.
* **Credentials by reference.** `auth` is `env:NAME` or `file:/path` (one SCHEME:CREDENTIAL per line,
  like ORCHESTRATOR_ZK_AUTH); the credential itself is read when a session is opened and never written.
* **Validation.** Both files are pydantic models with unknown keys forbidden and strict types (no "2"
  for 2, no true for a number); errors name the file and the key, never echo a value.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import InputError, RefusedError

STATE_VERSION: Literal[2] = 2
PHASES = 6
MAX_STATE_BYTES = 16 * 1024 * 1024  # a state is a few KiB; anything near this is not one
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MigrationError(InputError):
    """Bad input or a state that forbids the operation: reported in one line, nothing changed (exit 2)."""


def _http_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
            raise ValueError(f"{url!r} is not an http(s) URL")
    return urls


class Config(BaseModel):
    """What the operator configures (YAML or JSON); copied into the state by `migrate start`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: str = Field(min_length=1)  # ensemble A, "host:port,..." (the one being left)
    target: str = Field(min_length=1)  # ensemble B
    paths: list[str] = Field(min_length=1)
    masters_a: list[str] = Field(min_length=1)
    masters_b: list[str] = Field(min_length=1)
    marathon: list[str] = Field(min_length=1)
    sync_metrics: str
    archive: str
    # Host names as Mesos reports them; required, or the agent gates of phases 4 and 5 would check nothing.
    agents_a: list[str] = Field(min_length=1)
    agents_b: list[str] = Field(min_length=1)
    # An empty list would make the "frameworks registered" gate pass vacuously.
    frameworks: list[str] = Field(default_factory=lambda: ["marathon"], min_length=1)
    auth: str | None = None  # env:NAME or file:/path, never the credential
    max_lag_seconds: float = Field(0.05, gt=0, le=3600)
    retention_hours: int = Field(72, gt=0, le=24 * 3650)
    s3_endpoint_url: str | None = None
    hook: str | None = Field(None, min_length=1)

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_is_a_reference(cls, value: object) -> object:
        # Messages never repeat the value: it may be the very credential that must not be printed.
        if value is None:
            return value
        if not isinstance(value, str) or not value.startswith(("env:", "file:")):
            raise ValueError("credentials are never stored in the configuration or the state: put them (one "
                             "SCHEME:CREDENTIAL per line) in a file or an environment variable and give "
                             "auth: file:/path or auth: env:NAME")
        kind, _, ref = value.partition(":")
        if kind == "env" and not ENV_NAME.fullmatch(ref):
            raise ValueError("env:NAME needs an environment variable name (letters, digits, _)")
        if kind == "file" and not ref.startswith("/"):
            raise ValueError("file:/path needs an absolute path")
        return value

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        from orchestrator.services.zk.tree import ZkInputError, validate_paths
        try:
            return validate_paths(value)
        except ZkInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("masters_a", "masters_b", "marathon")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _http_urls(value)

    @field_validator("sync_metrics", "s3_endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return value if value is None else _http_urls([value])[0]

    @field_validator("archive")
    @classmethod
    def _archive(cls, value: str) -> str:
        from orchestrator.services.zk.archive import S3Location
        try:
            S3Location.parse(value, option="")
        except InputError as exc:
            raise ValueError(str(exc).strip()) from None
        return value

    @field_validator("retention_hours")
    @classmethod
    def _whole_days(cls, value: int) -> int:
        if value % 24:
            raise ValueError("S3 expiry counts whole days: use a multiple of 24")
        return value

    @field_validator("max_lag_seconds")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return value

    @field_validator("source", "target")
    @classmethod
    def _connect(cls, value: str) -> str:
        from orchestrator.services.migration.checks import servers
        try:
            for host, port in servers(value):
                if not host or not 0 < port < 65536:
                    raise ValueError
        except ValueError:
            raise ValueError("expected host:port[,host:port…][/chroot]") from None
        return value

    @model_validator(mode="after")
    def _distinct(self) -> Config:
        from orchestrator.services.migration.checks import same_ensemble
        # Only the spelling here; `migrate start` also asks the servers (zk/identity.py).
        if same_ensemble(self.source, self.target):
            raise ValueError("source and target are the same ensemble")
        return self


class Pending(BaseModel):
    """A phase handed to the hook/operator whose gate has not passed yet."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["apply", "undo"]
    phase: int = Field(ge=1, le=PHASES)
    to: int | None = Field(None, ge=0, le=PHASES - 1)  # undo only: the phase rolled back to
    hook_done: bool


class State(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Literal[2] = STATE_VERSION  # version 1 kept credentials in clear
    config: Config
    phase: int = Field(0, ge=0, le=PHASES)  # phases completed
    pending: Pending | None = None
    baseline_task_failures: int | None = Field(None, ge=0)
    archive_key: str | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("history")
    @classmethod
    def _events(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, h in enumerate(value):
            if not (isinstance(h.get("time"), str) and isinstance(h.get("event"), str)):
                raise ValueError(f"entry {i} needs a \"time\" and an \"event\" string")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> State:
        p = self.pending
        if p is None:
            return self
        if p.action == "apply":
            if p.phase != self.phase + 1 or p.to is not None:
                raise ValueError(f"pending apply of phase {p.phase} does not follow phase {self.phase}")
        elif p.to is None or not p.to < p.phase or p.phase not in (self.phase, self.phase + 1):
            raise ValueError(f"pending rollback (phase {p.phase} to {p.to}) does not fit phase {self.phase}")
        return self

    def record(self, event: str, **details: Any) -> None:
        self.history.append({"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event,
                             **details})

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(self.model_dump(mode="json"), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            raise MigrationError(f"no migration state at {path}: run `orchestrator migrate start` first") from None
        except OSError as exc:
            raise MigrationError(f"cannot read the state file {path}: {exc.strerror or exc}") from None
        if len(raw) > MAX_STATE_BYTES:
            raise MigrationError(f"{path}: larger than {MAX_STATE_BYTES} bytes, not a migration state")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MigrationError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict) and data.get("version") == 1:
            raise MigrationError(f"{path}: state version 1, written by an older orchestrator that kept ZooKeeper "
                                 "credentials in it: put them in a file (mode 0600) or an environment variable, "
                                 "set \"auth\" to \"file:/path\" or \"env:NAME\" and \"version\" to 2")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise MigrationError(validation_message(str(path), exc)) from None


def validation_message(where: str, exc: ValidationError) -> str:
    """One line: the file, the first problem's key path and message, and how many more there are."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    msg = {"model_type": "expected a mapping", "missing": "required key is missing",
           "extra_forbidden": "unknown key"}.get(first["type"], msg)
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {loc}: {msg}{more}"


def load_config(path: Path) -> Config:
    import yaml
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        raise MigrationError(f"{path}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise MigrationError(validation_message(str(path), exc)) from None


def with_auth(cfg: Config, ref: str) -> Config:
    """`cfg` with another credential reference (from --auth-env/--auth-file), validated like the file's."""
    try:
        return Config.model_validate({**cfg.model_dump(), "auth": ref})
    except ValidationError as exc:
        raise MigrationError(validation_message("--auth-env/--auth-file", exc)) from None


# -- credentials ---------------------------------------------------------------------------------------------

def resolve_auth(ref: str | None) -> list[tuple[str, str]]:
    """The credentials a reference points to (read now, never stored). Without a reference, the
    ORCHESTRATOR_ZK_AUTH variable, as for the zk commands."""
    from orchestrator.services.zk.session import auth_from
    from orchestrator.services.zk.tree import ZkInputError, parse_auth
    if ref is None:
        return auth_from([])
    kind, _, name = ref.partition(":")
    if kind == "env":
        if name not in os.environ:
            raise MigrationError(f"auth {ref}: the environment variable {name} is not set")
        text = os.environ[name]
    else:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MigrationError(f"auth {ref}: cannot read the file ({getattr(exc, 'strerror', None) or exc})") \
                from None
    try:
        return parse_auth([line.strip() for line in text.splitlines() if line.strip()])
    except ZkInputError:
        raise MigrationError(f"auth {ref}: expected one SCHEME:CREDENTIAL per line, e.g. digest:user:password") \
            from None


# -- files ---------------------------------------------------------------------------------------------------

def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by a file holding `text`, mode 0600, so that no reader or crash sees half of it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise MigrationError(f"cannot write the state next to {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def lock_path(state: Path) -> Path:
    return state.with_name(state.name + ".lock")


@contextlib.contextmanager
def exclusive(state: Path) -> Iterator[None]:
    """Hold the migration's lock for the block, or RefusedError naming the process that holds it."""
    path = lock_path(state)
    try:
        # O_NOFOLLOW: a symlink planted at the lock's name must not make us truncate another file.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise MigrationError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RefusedError(f"another migrate holds the lock on {state} (pid {holder}); wait for it to "
                               "finish, then run the command again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
