"""Offline render: run the Pulumi program (`__main__.py`) under recording mocks and write Kubernetes YAML.

No Pulumi CLI and no cluster: the stack file is read as the CLI would present it to the program
(namespaced keys, structured values as JSON, `secure:` values replaced by a placeholder), the program
runs against a mock engine that records every registration, and the records become manifests.
"""
from __future__ import annotations

import json
import os
import runpy
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator import pulumi_adapter
from orchestrator.contracts.tiers import NAMESPACES_DIR

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


class RenderError(Exception):
    """The stack cannot be rendered; nothing was written."""


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

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return [m for tier in sorted(self.manifests_by_tier) for m in self.manifests_by_tier[tier]]


# --- stack config, as the CLI hands it to the program -------------------------------------------
def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, str], list[str], str]:
    source = f"Pulumi.{stack}.yaml"
    path = project_dir / source
    if not path.is_file():
        stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise RenderError(f"{source}: no such stack file (stacks: {', '.join(stacks) or 'none'})")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RenderError(f"{source}: not valid YAML: {exc}") from None
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise RenderError(f"{source}: 'config' must be a mapping of keys to values")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full_key = key if ":" in key else f"{PROJECT_NAME}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Ciphertext cannot be decrypted offline; the program sees a placeholder marked secret.
            config[full_key] = REDACTED
            secret_keys.append(full_key)
        elif isinstance(value, (dict, list)):
            config[full_key] = json.dumps(value)
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


def build_manifests(result: RenderResult) -> RenderResult:
    by_urn = {r.urn: r for r in result.registrations}
    seen: dict[tuple[str, str], str] = {}
    objects: dict[tuple[str, str, str], str] = {}
    tiers: dict[str, list[dict[str, Any]]] = {}
    for reg in result.registrations:
        # The real engine rejects duplicate URNs; the mocks do not, so check here.
        if (reg.type, reg.name) in seen:
            raise RenderError(f"duplicate resource {reg.type} {reg.name!r}")
        seen[(reg.type, reg.name)] = reg.urn
        doc = to_manifest(reg)
        if doc is None:
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
    config, secret_keys, _ = load_stack_config(stack, project_dir)
    # The render is the whole tree Argo CD syncs, whatever the stack's delivery: every tier and the
    # Argo CD objects (components/platform.py, "scope"). `pulumi up` runs with the default scope.
    config[SCOPE_CONFIG] = "tree"
    previous = os.environ.get(LEGACY_SCOPE_ENV)
    os.environ[LEGACY_SCOPE_ENV] = "tree"
    try:
        return build_manifests(run_program(stack, config, secret_keys, project_dir / "__main__.py"))
    finally:
        if previous is None:
            del os.environ[LEGACY_SCOPE_ENV]
        else:
            os.environ[LEGACY_SCOPE_ENV] = previous


# --- output -------------------------------------------------------------------------------------
def dump_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=120)


def write_render(result: RenderResult, out_dir: Path) -> None:
    """Write `<out>/<tier>/manifests.yaml` and `<out>/stack-outputs.json` atomically: a sibling temp
    dir is filled first and swapped in, so a failure leaves any previous render untouched."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for tier, docs in sorted(result.manifests_by_tier.items()):
            (tmp / tier).mkdir()
            (tmp / tier / "manifests.yaml").write_text(dump_yaml(docs))
        outputs = _ordered(plain(result.stack_outputs))
        (tmp / "stack-outputs.json").write_text(json.dumps(outputs, indent=2) + "\n")
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def summary(result: RenderResult) -> str:
    lines = [f"stack {result.stack}: {len(result.manifests)} Kubernetes objects"]
    for tier, docs in sorted(result.manifests_by_tier.items()):
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        lines.append(f"  {tier:<14} {len(docs):>3}  " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return "\n".join(lines)
