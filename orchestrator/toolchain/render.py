"""Offline render: run the Pulumi program (`__main__.py`) under recording mocks and write Kubernetes YAML.

No Pulumi CLI and no cluster: the stack file is read as the CLI would present it to the program
(namespaced keys, structured values as JSON, `secure:` values replaced by a placeholder), the program
runs against a mock engine that records every registration, and the records become manifests.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import runpy
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator import pulumi_adapter
from orchestrator.contracts.tiers import AUTH, NAMESPACES_DIR
from orchestrator.errors import ExitCode, InputError, OrchestratorError, RefusedError

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROJECT_NAME = "orchestrator"
REDACTED = "[redacted-secret]"
# Tier directory for resources that the Platform creates itself (namespaces).
PLATFORM_TIER = NAMESPACES_DIR
# What the program declares (components/platform.py "scope"): the render asks for the whole tree through
# the program's config. Kept here, not imported: `orchestrator diff` renders older revisions of
# components/ with this engine. Revisions before the config key read the environment variable instead,
# so the render sets both (the current program never reads the environment).
SCOPE_CONFIG = "orchestrator-render:scope"
LEGACY_SCOPE_ENV = "ORCHESTRATOR_SCOPE"


class RenderError(OrchestratorError):
    """The stack cannot be rendered; nothing was written."""


class StackFileError(RenderError):
    """The stack file itself is bad (missing, not strict YAML, wrong shape): bad input."""

    exit_code = ExitCode.INPUT


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]


@dataclass
class RenderResult:
    stack: str
    registrations: list[Registration]
    outputs_registered: set[str]
    stack_outputs: dict[str, Any]
    manifests_by_tier: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Registrations of reviewed non-Kubernetes types (NON_KUBERNETES_TYPES): in no manifest, reported.
    outside_tree: list[Registration] = field(default_factory=list)

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return [m for tier in sorted(self.manifests_by_tier) for m in self.manifests_by_tier[tier]]


# --- stack config, as the CLI hands it to the program -------------------------------------------
def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, str], list[str], str]:
    from orchestrator.strict_yaml import YamlError, load_mapping

    source = f"Pulumi.{stack}.yaml"
    path = project_dir / source
    if not path.exists():
        stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"{source}: no such stack file (stacks: {', '.join(stacks) or 'none'})")
    try:
        # Strict: duplicate keys, alias bombs, non-UTF-8 and oversized files are refused (orchestrator/strict_yaml.py).
        doc = load_mapping(path, source)
    except YamlError as exc:
        raise StackFileError(str(exc)) from None
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError(f"{source}: 'config' must be a mapping of keys to values")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    spelled: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise StackFileError(f"{source}: config key {key!r}: must be a string (namespace:name)")
        full_key = key if ":" in key else f"{PROJECT_NAME}:{key}"
        # `production` and `orchestrator:production` are one key to the program: never last-wins.
        if full_key in spelled:
            raise StackFileError(f"{source}: {full_key}: set twice (as {spelled[full_key]!r} and {key!r})")
        spelled[full_key] = key
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Ciphertext cannot be decrypted offline; the program sees a placeholder marked secret.
            config[full_key] = REDACTED
            secret_keys.append(full_key)
        elif isinstance(value, (dict, list)):
            config[full_key] = json.dumps(value, default=str)  # dates etc. as the CLI's strings
        elif isinstance(value, bool):
            config[full_key] = "true" if value else "false"
        else:
            config[full_key] = str(value)
    return config, secret_keys, source


# --- recording engine ---------------------------------------------------------------------------
def run_program(stack: str, config: dict[str, str], secret_keys: list[str],
                program: Path | Callable[[], None] | None = None) -> RenderResult:
    """Run the Pulumi program (a file, `__main__.py` by default, or a callable that builds resources,
    for unit tests) under the recording mocks. Raises what the program raises. The SDK internals this
    needs are in orchestrator/pulumi_adapter.py."""
    pulumi_adapter.require_sdk("orchestrator render")
    import pulumi

    records: list[Registration] = []
    outputs_registered: set[str] = set()
    stack_outputs: dict[str, Any] = {}

    class RecordingMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)  # echo inputs: dependent Outputs resolve

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            raise RenderError(f"provider function {args.token} cannot run offline")

    def on_register(type_: str, name: str, urn: str, parent: str, custom: bool, inputs: dict[str, Any]) -> None:
        records.append(Registration(type_, name, urn, parent, custom, inputs))

    monitor = pulumi_adapter.recording_monitor(RecordingMocks(), on_register, outputs_registered.add)
    pulumi_adapter.install(monitor, PROJECT_NAME, stack, config, secret_keys)
    program = program or PROJECT_DIR / "__main__.py"

    @pulumi.runtime.test
    def _run() -> pulumi.Output[None]:
        if callable(program):
            program()
        else:
            runpy.run_path(str(program), run_name="__main__")
        exported = pulumi_adapter.stack_exports()

        async def resolve() -> None:
            for key, value in exported.items():
                out = pulumi.Output.from_input(value)
                resolved = await out.future()
                stack_outputs[key] = pulumi_adapter.wrap_secret(resolved) if await out.is_secret() else resolved

        return pulumi.Output.from_input(resolve())

    _run()
    return RenderResult(stack, records, outputs_registered, stack_outputs)


# --- records → manifests ------------------------------------------------------------------------
def plain(value: Any, redact: bool = True) -> Any:
    """Wire form → plain YAML data: integral floats back to ints, secrets redacted, None dropped."""
    if isinstance(value, dict):
        if pulumi_adapter.is_secret(value):
            inner = plain(value.get("value"), redact)
            if not redact:
                return inner
            return {k: REDACTED for k in inner} if isinstance(inner, dict) else REDACTED
        return {k: plain(v, redact) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v, redact) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_TOP_ORDER = ("apiVersion", "kind", "metadata")


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _ordered(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def to_manifest(reg: Registration) -> dict[str, Any] | None:
    if not reg.type.startswith("kubernetes:"):
        return None
    inputs = plain(reg.inputs)
    if "apiVersion" not in inputs or "kind" not in inputs:
        return None
    doc = {k: _ordered(inputs[k]) for k in _TOP_ORDER if k in inputs}
    doc.update({k: _ordered(inputs[k]) for k in sorted(inputs) if k not in _TOP_ORDER})
    return doc


# Nothing escapes the render: every registered resource becomes a manifest, except these reviewed types,
# which create nothing in a cluster (state-only keys and certificates whose PEM the program puts into a
# Secret of the render) and are listed by `summary`. Anything else that yields no manifest offline (a
# provider-side component such as kubernetes:yaml/v2:ConfigGroup or helm/v4:Chart, an explicit provider
# aimed at another cluster, an object without apiVersion/kind) fails the render by name: `pulumi up`
# would create what the render, the checks and `orchestrator diff` cannot see. Add a type here only
# with its reason, in a reviewed change.
NON_KUBERNETES_TYPES: dict[str, str] = {
    "tls:index/privateKey:PrivateKey": "a key in Pulumi's state; what the cluster gets is the Secret holding it",
    "tls:index/selfSignedCert:SelfSignedCert": "a CA certificate in Pulumi's state, delivered through a Secret",
    "tls:index/locallySignedCert:LocallySignedCert": "a certificate in Pulumi's state, delivered through a Secret",
    "tls:index/certRequest:CertRequest": "a certificate request in Pulumi's state, creates nothing",
    "random:index/randomPassword:RandomPassword": "a generated password in Pulumi's state, delivered through a Secret",
    # components/zk_certs.py: a dynamic provider of ours (cryptography), for `zookeeper.tls_certificates: generate`
    "pulumi-python:dynamic/orchestrator:ZooKeeperCertificates":
        "ZooKeeper's CA and member certificate in Pulumi's state, delivered through the credentials tier's Secret",
}
# Our own component resources (`orchestrator:<module>:<Class>`) only group their children.
OWN_COMPONENT_PREFIX = "orchestrator:"


def tier_of(reg: Registration, by_urn: dict[str, Registration]) -> str:
    """The tier is the top-most component below the Platform: walk up the parent chain."""
    chain = [reg]
    while chain[-1].parent in by_urn:
        chain.append(by_urn[chain[-1].parent])
    components = [r for r in chain if not r.custom]
    # components[-1] is the Platform; the one below it names the tier.
    if len(components) >= 2:
        return components[-2].name
    return PLATFORM_TIER


def sort_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata", {})
    return (doc["kind"], meta.get("namespace", ""), meta.get("name", ""))


def escaped(result: RenderResult) -> list[str]:
    """Registrations that yield no manifest and are neither our own components nor a reviewed
    non-Kubernetes type, each as `type 'name' (tier)`."""
    by_urn = {r.urn: r for r in result.registrations}
    parents = {r.parent for r in result.registrations}
    found = []
    for reg in result.registrations:
        if reg.custom:
            if reg.type in NON_KUBERNETES_TYPES or to_manifest(reg) is not None:
                continue
        elif reg.type.startswith(OWN_COMPONENT_PREFIX) or reg.urn in parents:
            continue  # a component that expanded here: its children are judged one by one
        found.append(f"{reg.type} {reg.name!r} ({tier_of(reg, by_urn)})")
    return found


def build_manifests(result: RenderResult) -> RenderResult:
    by_urn = {r.urn: r for r in result.registrations}
    seen: dict[tuple[str, str], str] = {}
    objects: dict[tuple[str, str, str], str] = {}
    tiers: dict[str, list[dict[str, Any]]] = {}
    outside = escaped(result)
    if outside:
        raise RenderError("resources that produce no manifest offline (`pulumi up` would create what the render, "
                          f"its checks and `orchestrator diff` cannot see): {'; '.join(outside)}")
    for reg in result.registrations:
        # The real engine rejects duplicate URNs; the mocks do not, so check here.
        if (reg.type, reg.name) in seen:
            raise RenderError(f"duplicate resource {reg.type} {reg.name!r}")
        seen[(reg.type, reg.name)] = reg.urn
        doc = to_manifest(reg)
        if doc is None:
            if reg.custom:
                result.outside_tree.append(reg)
            continue
        key = (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"].get("name", ""))
        if not key[2]:
            raise RenderError(f"{reg.type} {reg.name!r} has no metadata.name (set names explicitly)")
        if key in objects:
            raise RenderError(f"two resources render to the same object {key}: {objects[key]} and {reg.name}")
        objects[key] = reg.name
        tiers.setdefault(tier_of(reg, by_urn), []).append(doc)
    result.manifests_by_tier = {t: sorted(docs, key=sort_key) for t, docs in tiers.items()}
    return result


def render_stack(stack: str, project_dir: Path = PROJECT_DIR) -> RenderResult:
    """Load the stack's config and render it. Raises RenderError or SettingsError; writes nothing."""
    project_dir = project_dir.resolve()
    config, secret_keys, _ = load_stack_config(stack, project_dir)
    # The render is the whole tree Argo CD syncs, whatever the stack's delivery: every tier and the
    # Argo CD objects (components/platform.py, "scope"). `pulumi up` runs with the default scope.
    config[SCOPE_CONFIG] = "tree"
    previous = os.environ.get(LEGACY_SCOPE_ENV)
    os.environ[LEGACY_SCOPE_ENV] = "tree"
    # The Pulumi CLI runs a program in its project directory: paths in the stack file (e.g.
    # marathon_scaler.apps_dir) are the project's, whichever directory `orchestrator render` runs in.
    cwd = os.getcwd()
    os.chdir(project_dir)
    try:
        return build_manifests(run_program(stack, config, secret_keys, project_dir / "__main__.py"))
    finally:
        os.chdir(cwd)
        if previous is None:
            del os.environ[LEGACY_SCOPE_ENV]
        else:
            os.environ[LEGACY_SCOPE_ENV] = previous


# --- output -------------------------------------------------------------------------------------
def dump_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=120)


# The marker written with every render: what lets the next render replace this directory. Not .yaml or
# .json, which Argo CD's directory source would try to apply. It lists every file the render wrote: the
# next render replaces a marked directory only if it holds nothing else (a README added by hand, or a
# marker copied into another directory, makes it refuse).
MARKER = ".orchestrator-render"
_MARKER_HEAD = "# Written by `orchestrator render` (project orchestrator)."
_MARKER_MAX_BYTES = 64 * 1024
# Test-only hook: hold the render at a stage so the tests can signal it there (tests/test_data_safety_render.py).
_PAUSE_ENV = "ORCHESTRATOR_TEST_PAUSE"


# Tiers rendered (the checks and `orchestrator diff` see them) but never written: the credentials'
# Secrets. Pulumi applies them in both delivery modes; in a render their values are placeholders, so a
# written (committed) copy would set every password to the placeholder on a plain
# `kubectl apply -R -f rendered/<stack>`. Secrets reach the cluster only through `pulumi up`.
UNWRITTEN_TIERS = frozenset({AUTH.id})


def _render_files(result: RenderResult) -> dict[str, str]:
    """Relative path → text of every file of the render, marker included."""
    stray = sorted(f"{tier}/{d['metadata'].get('name')}" for tier, docs in result.manifests_by_tier.items()
                   if tier not in UNWRITTEN_TIERS for d in docs if d.get("kind") == "Secret")
    if stray:
        raise RenderError(f"Secrets outside the credentials tier ({', '.join(stray)}): every credential goes "
                          f"through the '{AUTH.id}' tier, which Pulumi applies and the render never writes")
    files = {f"{tier}/manifests.yaml": dump_yaml(docs) for tier, docs in sorted(result.manifests_by_tier.items())
             if tier not in UNWRITTEN_TIERS}
    files["stack-outputs.json"] = json.dumps(_ordered(plain(result.stack_outputs)), indent=2) + "\n"
    files[MARKER] = "\n".join([
        _MARKER_HEAD,
        f"# Stack {result.stack}. The next render replaces this directory as a whole, and refuses to if it holds",
        "# anything not listed below. Do not add files here.",
        *sorted(files), ""])
    return files


def _listed_in_marker(directory: Path) -> set[str] | None:
    """The files a marker lists, or None when the directory carries no marker of ours."""
    marker = directory / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        with open(marker, "rb") as f:
            lines = f.read(_MARKER_MAX_BYTES).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != _MARKER_HEAD:
        return None
    return {line for line in lines[1:] if line and not line.startswith("#")} | {MARKER}


def _legacy_render(root: Path, entries: dict[str, Path]) -> bool:
    """A render written before the marker existed: only `<tier>/manifests.yaml` files and a
    `stack-outputs.json` that holds our outputs contract (a bare manifests tree of someone else's is not)."""
    for rel, p in entries.items():
        if p.is_symlink():
            return False
        if p.is_dir() and "/" in rel:
            return False
        if not p.is_dir() and rel != "stack-outputs.json" and not (rel.count("/") == 1
                                                                   and rel.endswith("/manifests.yaml")):
            return False
    outputs = root / "stack-outputs.json"
    try:
        with open(outputs, "rb") as f:
            doc = json.loads(f.read(_MARKER_MAX_BYTES * 16))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "contract_version" in doc


def vet_out_dir(out_dir: Path) -> Path:
    """The directory a render may replace, resolved; raises RefusedError/InputError otherwise. Changes nothing.

    Allowed: an absent path, an empty directory, or a previous render (its marker lists every file in it;
    or the legacy layout). A symlink is followed: the directory it names is the one replaced, the link stays.
    """
    if out_dir.is_symlink() and not out_dir.exists():
        raise InputError(f"--out {out_dir}: a symbolic link to nothing ({os.readlink(out_dir)})")
    target = out_dir.resolve()
    if target.exists() and not target.is_dir():
        raise RefusedError(f"--out {out_dir}: an existing file, not a directory; refusing to replace it "
                           "(choose a new or empty directory)")
    if not target.exists():
        parent = next((p for p in target.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise InputError(f"--out {out_dir}: {parent} is a file, not a directory")
        return target
    if target == Path(target.anchor) or target == Path.home().resolve():
        raise RefusedError(f"--out {out_dir}: {target} is the root or home directory; refusing to replace it")
    try:
        entries = {str(p.relative_to(target)): p for p in target.rglob("*")} if any(target.iterdir()) else {}
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot list {target}: {exc.strerror or exc}") from None
    if not entries:
        return target
    listed = _listed_in_marker(target)
    if listed is None:
        if _legacy_render(target, entries):
            return target
        raise RefusedError(f"--out {out_dir}: {target} is not empty and is not a previous render (no {MARKER} "
                           "file); refusing to replace what it holds (choose a new or empty directory)")
    foreign = sorted(rel for rel, p in entries.items()
                     if rel not in listed and not (p.is_dir() and not p.is_symlink()
                                                   and any(f.startswith(rel + "/") for f in listed)))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RefusedError(f"--out {out_dir}: {target} holds files the render did not write ({shown}); "
                           "refusing to replace them (move them away or choose another directory)")
    return target


def _pause(stage: str) -> None:
    if os.environ.get(_PAUSE_ENV) == stage:
        print(f"paused at {stage}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get(_PAUSE_ENV + "_S", "10")))


class SignalsDeferred:
    """Record SIGINT/SIGTERM instead of acting on them inside a block; raise KeyboardInterrupt after it.
    (Python runs signal handlers in the main thread only, so replacing them covers every thread.)

    With `escalate`, a second signal interrupts at once: for blocks that change nothing on disk (the
    in-memory render), where the first signal only spares the user asyncio's noise from inside Pulumi's
    event loop, and a second one must still stop a render that hangs."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, escalate: bool = False) -> None:
        self.escalate = escalate
        self.received: list[int] = []
        self.previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if self.escalate:
            if len(self.received) > 1:
                raise KeyboardInterrupt
            print("orchestrator: stopping after this step (signal again to stop now)", file=sys.stderr, flush=True)

    def __enter__(self) -> SignalsDeferred:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.received and exc[0] is None:
            raise KeyboardInterrupt


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE). False when the platform or the file
    system cannot; raises OSError for any other failure."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl without it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, target: Path) -> Path | None:
    """Put `new` at `target`. Returns where the old tree now is (to remove), or None. Atomic: an exchange,
    or a rename onto an absent path; else two renames, undone if the second fails."""
    if not target.exists():
        os.rename(new, target)  # fails (does not replace) if a non-empty directory appeared meanwhile
        return None
    if _exchange(new, target):
        return new  # `new` now names the old tree
    # Fallback: move the old tree aside, move the new one in, put the old one back on any failure. After a
    # crash (SIGKILL, power loss) between the two renames the old render is at `.<name>.old-<pid>-*`.
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def write_render(result: RenderResult, out_dir: Path) -> None:
    """Write `<out>/<tier>/manifests.yaml`, `<out>/stack-outputs.json` and the marker, replacing a previous
    render at once: the new tree is written next to it and swapped in, so a failure or a signal leaves the
    old render or the new one, never neither. Refuses (RefusedError) a directory the render did not write."""
    target = vet_out_dir(out_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.render-", dir=target.parent))
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write in {target.parent}: {exc.strerror or exc}") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make the published tree private
        for rel, text in _render_files(result).items():
            (tmp / rel).parent.mkdir(exist_ok=True)
            (tmp / rel).write_text(text)
        _pause("written")
        with SignalsDeferred():
            vet_out_dir(out_dir)  # again, just before the swap: another process may have written there
            old = _swap_in(tmp, target)
            _pause("swapped")
            if old is not None:
                shutil.rmtree(old)
    except BaseException:
        with SignalsDeferred():
            if tmp.exists():  # not swapped in: the new tree, or (after the exchange) the old one
                shutil.rmtree(tmp, ignore_errors=True)
        raise


def summary(result: RenderResult) -> str:
    lines = [f"stack {result.stack}: {len(result.manifests)} Kubernetes objects"]
    for tier, docs in sorted(result.manifests_by_tier.items()):
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        lines.append(f"  {tier:<14} {len(docs):>3}  " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
                     + ("  (checked, not written: Pulumi applies it)" if tier in UNWRITTEN_TIERS else ""))
    if result.outside_tree:
        lines.append("  not Kubernetes objects (reviewed types, state only): "
                     + ", ".join(f"{r.type} {r.name!r}" for r in result.outside_tree))
    return "\n".join(lines)
