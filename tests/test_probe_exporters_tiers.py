"""The exporters tier (it replaces the masters' exporter sidecar) and the probe DaemonSet tier, as rendered."""
from __future__ import annotations

import json

import pytest

from components.settings import OPTIONAL_SECRET_KEYS, SECRET_KEYS, SettingsError, settings_from_config
from orchestrator.toolchain.render import REDACTED, SCOPE_CONFIG, build_manifests, load_stack_config, run_program
from tests.support.harness import one, stack

TOKEN = "pr0be-T0ken-x9Q"


def render_prod_with_probe():
    config, secret_keys, _ = load_stack_config("prod")
    for key in SECRET_KEYS:
        config[f"orchestrator:{key}"] = f"S3cr3t-{key}"
    config["orchestrator:probe"] = json.dumps({"enabled": True})
    config["orchestrator:probe_token"] = TOKEN
    config[SCOPE_CONFIG] = "tree"  # prod is GitOps-delivered: the tree is what Argo CD applies
    keys = list(secret_keys) + ["orchestrator:probe_token"]
    return build_manifests(run_program("prod", config, keys))


def test_masters_have_no_sidecar_and_the_exporters_scrape_them_all():
    result = stack("prod")
    masters = one(result, "StatefulSet", "mesos-master")
    assert [c["name"] for c in masters["spec"]["template"]["spec"]["containers"]] == ["mesos-master"]
    images = {c["image"] for m in result.manifests if m["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
              for c in m["spec"]["template"]["spec"]["containers"]}
    assert not any("mesos-exporter" in i for i in images)  # the tag that was never published

    exporters = one(result, "Deployment", "exporters")
    pod = exporters["spec"]["template"]["spec"]
    mesos, marathon = pod["containers"]
    assert mesos["command"] == ["orchestrator"] and mesos["args"][:2] == ["exporter", "mesos"]
    masters_args = [mesos["args"][i + 1] for i, a in enumerate(mesos["args"]) if a == "--master"]
    assert masters_args == [f"http://mesos-master-{i}.mesos-master-headless.orchestrator.svc.cluster.local:5050"
                            for i in range(3)]
    # prod has authentication on: credentials are files from the Secrets, never arguments or env values.
    assert "--credentials" in mesos["args"] and "--principal" in mesos["args"]
    assert marathon["args"][:2] == ["exporter", "marathon"] and "--credentials" in marathon["args"]
    assert {v["secret"]["secretName"] for v in pod["volumes"]} == {"mesos-master-auth", "marathon-auth"}
    assert mesos["securityContext"]["runAsNonRoot"] is True and exporters["spec"]["replicas"] == 1


def test_probe_tier_is_off_by_default():
    assert not [m for m in stack("prod").manifests if m["kind"] == "DaemonSet" and m["metadata"]["name"] == "probe"]


def test_probe_daemonset_privileges_are_the_documented_minimum():
    result = render_prod_with_probe()
    ds = one(result, "DaemonSet", "probe")
    assert ds["metadata"]["namespace"] == "orchestrator-agents"
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert pod["hostPID"] is True and "hostNetwork" not in pod and "privileged" not in sc
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE", "DAC_READ_SEARCH"]}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert all(m.get("readOnly") for m in container["volumeMounts"])
    host_paths = [v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v]
    assert host_paths == ["/sys/fs/cgroup"]
    args = container["args"]
    # The API's headless Service: every replica gets every report.
    assert args[:3] == ["probe", "--api", "http://orchestrator-service-headless.orchestrator.svc.cluster.local:8080"]
    assert "--kubernetes" in args and "--mesos-agent" in args and "--token-file" in args
    skipped = {v.split("=", 1)[0] for k, v in ds["metadata"]["annotations"].items() if k.startswith("checkov.io/skip")}
    assert {"CKV_K8S_17", "CKV_K8S_23", "CKV_K8S_25", "CKV_K8S_38", "CKV_K8S_40"} <= skipped

    role = one(result, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    token = one(result, "Secret", "probe-token")
    assert token["metadata"]["namespace"] == "orchestrator-agents" and token["stringData"] == {"token": REDACTED}
    assert TOKEN not in json.dumps(result.manifests)


@pytest.mark.parametrize(("extra", "message"), [
    ({}, "orchestrator:probe_token: required with probe.enabled"),
    ({"orchestrator:security": json.dumps({"auth": False}), "orchestrator:probe_token": "x"},
     "orchestrator:probe.enabled: needs authentication on"),
])
def test_probe_settings_refused_without_auth_or_token(extra, message):
    config = {"orchestrator:probe": json.dumps({"enabled": True}), **extra}
    secret_keys = {k for k in extra if k.endswith(tuple(OPTIONAL_SECRET_KEYS))}
    with pytest.raises(SettingsError) as err:
        settings_from_config(config, "Pulumi.x.yaml", secret_keys)
    assert message in str(err.value)
