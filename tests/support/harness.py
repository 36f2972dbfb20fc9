"""Run components under the same recording mocks as the offline render, for unit tests.

Every helper returns what was really registered; tests assert on those records, and on their count,
so an assertion can never pass because nothing ran.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.settings import PlatformSettings
from orchestrator.toolchain.render import RenderResult, build_manifests, plain, render_stack, run_program


def settings(**overrides: Any) -> PlatformSettings:
    return PlatformSettings.model_validate(overrides)


def run(build: Callable[[], Any], stack: str = "unit") -> RenderResult:
    result = build_manifests(run_program(stack, {}, [], build))
    assert result.registrations, "the program registered nothing: the mocks were not in effect"
    return result


def resolve(build: Callable[[], dict[str, Any]]) -> tuple[RenderResult, dict[str, Any]]:
    """Build components and resolve the Outputs returned by `build` (plain values)."""
    import pulumi

    values: dict[str, Any] = {}

    def program() -> None:
        outputs = build()
        pulumi.Output.all(**outputs).apply(values.update)

    result = run(program)
    assert values, "the Outputs never resolved: the apply did not run"
    return result, plain(values)


def objects(result: RenderResult, kind: str) -> list[dict[str, Any]]:
    return [m for m in result.manifests if m["kind"] == kind]


def one(result: RenderResult, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in objects(result, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[m['metadata']['name'] for m in found]}"
    return found[0]


_stack_cache: dict[str, RenderResult] = {}


def stack(name: str) -> RenderResult:
    """The real stack rendered from its Pulumi.<name>.yaml (cached: rendering is deterministic)."""
    if name not in _stack_cache:
        _stack_cache[name] = render_stack(name)
    return _stack_cache[name]


def stack_settings(name: str) -> PlatformSettings:
    """The settings of a real stack, from its Pulumi.<name>.yaml as the render reads it."""
    from components.settings import settings_from_config
    from orchestrator.toolchain.render import load_stack_config

    config, secret_keys, source = load_stack_config(name)
    return settings_from_config(config, source, set(secret_keys))
