"""The Pulumi SDK internals behind orchestrator/pulumi_adapter.py. An SDK upgrade that changes any of
them fails here, naming it, instead of silently breaking the offline render (secrets no longer
recognised, registrations no longer recorded, secret config read as plain)."""
import importlib.metadata
import inspect
import re
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc

from orchestrator import pulumi_adapter
from orchestrator.toolchain.render import REDACTED, build_manifests, plain, run_program

ROOT = Path(__file__).resolve().parents[1]


def test_secret_signature_is_the_sdks():
    assert rpc._special_sig_key == pulumi_adapter.SECRET_SIG_KEY, "pulumi.runtime.rpc secret key changed"
    assert rpc._special_secret_sig == pulumi_adapter.SECRET_SIG_VALUE, "pulumi.runtime.rpc secret marker changed"


def test_internals_the_adapter_calls_still_exist_with_their_shape():
    assert callable(getattr(mocks.MockMonitor, "RegisterResource", None)), "MockMonitor.RegisterResource is gone"
    assert callable(getattr(mocks.MockMonitor, "RegisterResourceOutputs", None))
    assert "mocks" in inspect.signature(mocks.MockMonitor.__init__).parameters
    assert list(inspect.signature(rpc.deserialize_properties).parameters)[0] == "props_struct"
    for name in ("set_all_config", "get_config_env", "get_config_secret_keys_env", "is_config_secret", "CONFIG"):
        assert hasattr(runtime_config, name), f"pulumi.runtime.config.{name} is gone"
    assert {"monitor", "preview"} <= set(inspect.signature(pulumi.runtime.set_mocks).parameters)


def test_the_installed_sdk_is_the_pinned_one():
    pins = dict(re.findall(r'"(pulumi(?:-kubernetes)?)==([^"]+)"', (ROOT / "pyproject.toml").read_text()))
    assert importlib.metadata.version("pulumi") == pins["pulumi"], "re-run this file after changing the pin"


def test_a_recorded_program_round_trips_secrets_exports_and_secret_config():
    seen: dict[str, object] = {}

    def program() -> None:
        seen["config"] = pulumi_adapter.program_config()
        password = pulumi.Config("t").require_secret("password")
        k8s.core.v1.Secret("s", metadata={"name": "s"}, string_data={"pw": password})
        pulumi.export("pw", password)
        pulumi.export("plain", "x")

    result = run_program("unit", {"t:password": "hunter2", "t:other": "1"}, ["t:password"], program)
    raw, secret = seen["config"]
    assert raw["t:password"] == "hunter2" and secret == {"t:password"}
    [reg] = [r for r in result.registrations if r.type == "kubernetes:core/v1:Secret"]
    # A secret input arrives wrapped in the signature (the whole map holding it), plain() redacts it.
    assert pulumi_adapter.is_secret(reg.inputs["stringData"]), reg.inputs
    assert reg.inputs["stringData"]["value"] == {"pw": "hunter2"}
    assert plain(reg.inputs)["stringData"] == {"pw": REDACTED}
    assert pulumi_adapter.is_secret(result.stack_outputs["pw"]) and result.stack_outputs["plain"] == "x"
    assert build_manifests(result).manifests[0]["stringData"] == {"pw": REDACTED}
