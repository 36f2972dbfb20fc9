"""The one place that touches Pulumi SDK internals (pulumi==3.272.0, pinned in pyproject's `platform` extra).

The offline render needs more than the public `pulumi.runtime.Mocks`: it records every registration
(a `MockMonitor` subclass and the wire-format deserializer), recognises secret values on the wire (the
secret signature), reads the root Stack resource's exports, and the program reads which config keys are
secret. Each of those is an SDK internal; they are all here so an SDK upgrade breaks one module, and
tests/test_pulumi_adapter.py fails loudly, naming what changed, before a render silently goes wrong.

Used by the toolchain (render) and by the platform's settings loader; never by the services (they do
not install Pulumi). Pulumi is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Pulumi's wire marker for secret values: {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": ...}
# (pulumi.runtime.rpc._special_sig_key / _special_secret_sig; the test compares them).
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


def require_sdk(command: str) -> None:
    """Fail with one clear line when the Pulumi SDK is not installed (a services-only install)."""
    import importlib.util

    from orchestrator.errors import ExitCode, OrchestratorError

    def missing(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except ImportError:  # a finder refused it
            return True

    if missing("pulumi") or missing("pulumi_kubernetes"):
        raise OrchestratorError(f"{command} needs the Pulumi SDK, which the services install leaves out: "
                                "pip install 'orchestrator[platform]' (from a checkout: pip install -e '.[platform]')",
                                ExitCode.INPUT)


def wrap_secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


# (type, name, urn, parent, custom, inputs) of one RegisterResource call.
OnRegister = Callable[[str, str, str, str, bool, dict[str, Any]], None]


def recording_monitor(mocks: Any, on_register: OnRegister, on_outputs: Callable[[str], None]) -> Any:
    """A mock resource monitor that serves `mocks` (a pulumi.runtime.Mocks) and reports every
    resource registration (the Stack itself excluded) and every register_outputs call."""
    from pulumi.runtime import mocks as sdk_mocks
    from pulumi.runtime import rpc

    class RecordingMonitor(sdk_mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC name)
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]  # SDK untyped
            if request.type != "pulumi:pulumi:Stack":
                on_register(request.type, request.name, response.urn, request.parent, bool(request.custom),
                            rpc.deserialize_properties(request.object))
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
            on_outputs(request.urn)
            return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]  # SDK untyped

    return RecordingMonitor(mocks)


def install(monitor: Any, project: str, stack: str, config: Mapping[str, str], secret_keys: list[str]) -> None:
    """Run the next program against `monitor` with this stack config (as the CLI would hand it over)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    runtime_config.set_all_config(dict(config), list(secret_keys))
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)


def stack_exports() -> dict[str, Any]:
    """What the program passed to `pulumi.export` (the root Stack resource's outputs). Under mocks the
    exports are never sent to the engine, so the render resolves them itself."""
    import pulumi

    root = pulumi.runtime.get_root_resource()
    if root is None:
        raise RuntimeError("the mocks set no root stack resource")
    outputs: dict[str, Any] = getattr(root, "outputs")  # noqa: B009 - pulumi.Stack's attribute, not Resource's
    return dict(outputs)


def program_config() -> tuple[dict[str, str], set[str]]:
    """The running program's config and which keys are secret, from the engine (environment) or the
    offline render (runtime config)."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env()) | {k for k in raw if runtime_config.is_config_secret(k)}
    return raw, secret
