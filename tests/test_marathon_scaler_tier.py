"""The Marathon scaler as a platform tier: rendered only when enabled, its arguments are the CLI's own, its
config and app definitions round-trip through the ConfigMap, it gets only Marathon's HTTP credentials, exactly its
network flows, and bad app definitions fail the settings with the file and field."""
import json

import pytest
import yaml

from components.platform import Platform, PlatformArgs
from components.settings import SECRET_KEYS, SettingsError, settings_from_config
from orchestrator.toolchain import checks
from tests.support.harness import run, settings
from tests.support.netpol import allowed, workload_endpoints

POLICY = {"min_instances": 2, "max_instances": 10, "metric": "cpu", "target": 0.65}
APP = {"id": "/shop/web", "cmd": "serve", "instances": 2, "healthChecks": [{"protocol": "HTTP", "path": "/"}]}


@pytest.fixture
def apps_dir(tmp_path):
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(APP))
    return str(tmp_path)


def platform(apps_dir, **scaler):
    s = settings(namespace="p", marathon_scaler={"enabled": True, "apps_dir": apps_dir,
                                                 "policies": {"shop/web": POLICY}, **scaler})
    return run(lambda: Platform("orchestrator", PlatformArgs(s, scope="tree"))).manifests


def named(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_disabled_by_default():
    docs = run(lambda: Platform("orchestrator", PlatformArgs(settings(namespace="p"), scope="tree"))).manifests
    assert not [d for d in docs if d["metadata"]["name"].startswith("marathon-scaler")]


def test_one_recreate_replica_running_the_cli_contract(apps_dir, tmp_path):
    docs = platform(apps_dir)
    dep = named(docs, "Deployment", "marathon-scaler")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    from orchestrator.cli import build_parser

    args = build_parser().parse_args(container["args"])  # spelled as the CLI accepts them
    assert (args.command, args.marathon_command) == ("marathon", "run")
    assert args.marathon == ["http://marathon.p.svc.cluster.local:8080"]
    assert args.prometheus == "http://prometheus.p.svc.cluster.local:9090"
    assert args.zk.startswith("zookeeper-0.zookeeper-headless.p.svc.cluster.local:2181")
    assert args.zk_path == "/orchestrator/marathon-scaler" and args.state_dir is None  # state in znodes
    assert args.apps_file and not args.allow_delete and not args.dry_run
    assert args.marathon_credentials_file is None and not container.get("env")  # no auth: no credentials
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9108"

    # The ConfigMap's files are what the daemon reads: the config and the declared apps round-trip.
    data = named(docs, "ConfigMap", "marathon-scaler-config")["data"]
    (tmp_path / "scaler.yaml").write_text(data["scaler.yaml"])
    (tmp_path / "apps.json").write_text(data["apps.json"])
    from orchestrator.services.marathon.apps import read_apps_file
    from orchestrator.services.marathon.policy import load_config

    assert load_config(str(tmp_path / "scaler.yaml")).policies["/shop/web"].max_instances == 10
    assert read_apps_file(tmp_path / "apps.json") == [APP]
    assert checks.reference_problems(docs) == []
    assert checks.kubernetes_schema_problems([d for d in docs if d["metadata"]["name"].startswith(
        "marathon-scaler")]) == []


SECRETS = tuple(SECRET_KEYS)  # every secret authentication requires


def test_its_own_zookeeper_identity_and_marathon_credentials_when_auth_is_on(apps_dir):
    from orchestrator.toolchain.render import SCOPE_CONFIG, build_manifests, run_program

    config = {"orchestrator:namespace": "p", "orchestrator:security": '{"auth": true}',
              "orchestrator:marathon_scaler": json.dumps({"enabled": True, "apps_dir": apps_dir}),
              SCOPE_CONFIG: "tree"}
    secrets = {f"orchestrator:{k}": "s3cr3t-Value" for k in (*SECRETS, "zookeeper_scaler_password")}
    secrets["orchestrator:zookeeper_api_password"] = "ap1-Value"
    docs = build_manifests(run_program("unit", {**config, **secrets}, list(secrets))).manifests
    spec = named(docs, "Deployment", "marathon-scaler")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["env"] == [
        {"name": "ORCHESTRATOR_ZK_AUTH",
         "valueFrom": {"secretKeyRef": {"name": "marathon-scaler-auth", "key": "zk-auth"}}},
        # The API's digest ACL id: whom the scaler lets read its state and write overrides.
        {"name": "ORCHESTRATOR_ZK_API_ACL",
         "valueFrom": {"secretKeyRef": {"name": "marathon-scaler-auth", "key": "api-acl-id"}}}]
    assert [v for v in spec["volumes"] if "secret" in v] == [{"name": "auth", "secret": {
        "secretName": "marathon-scaler-auth", "defaultMode": 0o440,
        "items": [{"key": "http-credentials", "path": "http-credentials"}]}}]
    args = container["args"]
    assert args[args.index("--marathon-credentials-file") + 1].endswith("/http-credentials")
    secret = named(docs, "Secret", "marathon-scaler-auth")
    assert set(secret["stringData"]) == {"zk-auth", "http-credentials", "api-acl-id"}  # no Mesos/Marathon ZK user
    for value in ("s3cr3t-Value", "ap1-Value"):
        assert value not in json.dumps(docs) and value not in " ".join(args)  # rendered redacted
    assert checks.reference_problems(docs) == []


def test_auth_on_requires_the_scalers_own_zookeeper_password(apps_dir):
    config = {"orchestrator:security": '{"auth": true}',
              "orchestrator:marathon_scaler": json.dumps({"enabled": True, "apps_dir": apps_dir})}
    secrets = {f"orchestrator:{k}": "x" for k in SECRETS}
    with pytest.raises(SettingsError) as err:
        settings_from_config({**config, **secrets}, "Pulumi.x.yaml", set(secrets))
    assert "orchestrator:zookeeper_scaler_password: required with marathon_scaler.enabled" in str(err.value)
    assert "orchestrator:zookeeper_api_password: required with marathon_scaler.enabled" in str(err.value)
    secrets["orchestrator:zookeeper_scaler_password"] = "x"
    with pytest.raises(SettingsError) as err:
        settings_from_config({**config, **secrets}, "Pulumi.x.yaml", set(secrets))
    assert "zookeeper_api_password: required" in str(err.value)
    assert "zookeeper_scaler_password: required" not in str(err.value)
    secrets["orchestrator:zookeeper_api_password"] = "x"
    assert settings_from_config({**config, **secrets}, "Pulumi.x.yaml", set(secrets)).marathon_scaler.enabled
    # Without authentication neither is needed (the znodes are world-open like everything then).
    assert settings_from_config(config | {"orchestrator:security": '{"auth": false}'}, "Pulumi.x.yaml")


def test_flows(apps_dir):
    docs = platform(apps_dir)
    eps = {e.name: e for e in workload_endpoints(docs, "10.1.2.3", "100.64.0.0/24")}
    scaler, marathon, prom = eps["marathon-scaler"], eps["marathon"], eps["prometheus"]
    assert allowed(docs, scaler, marathon, 8080) and allowed(docs, scaler, prom, 9090)
    assert allowed(docs, prom, scaler, 9108) and allowed(docs, scaler, eps["zookeeper"], 2181)
    assert not allowed(docs, scaler, eps["mesos-master"], 5050) and not allowed(docs, scaler, eps["zookeeper"], 2888)
    assert not allowed(docs, marathon, scaler, 9108)


def test_bad_app_definition_fails_the_settings_with_file_and_field(tmp_path):
    (tmp_path / "web.yaml").write_text("id: /shop/web\ncmd: x\nhealthChecks:\n  - {protocol: HTTP, path: health}\n")
    config = {"orchestrator:marathon_scaler": json.dumps({"enabled": True, "apps_dir": str(tmp_path)})}
    with pytest.raises(SettingsError) as err:
        settings_from_config(config, "Pulumi.x.yaml")
    message = str(err.value)
    assert "orchestrator:marathon_scaler.apps_dir" in message and "web.yaml" in message
    assert "healthChecks[0].path: must start with '/'" in message


def test_bad_policy_fails_the_settings_naming_the_key():
    config = {"orchestrator:marathon_scaler": json.dumps(
        {"enabled": True, "policies": {"/shop/web": {**POLICY, "min_instances": 20}}})}
    with pytest.raises(SettingsError) as err:
        settings_from_config(config, "Pulumi.x.yaml")
    assert "orchestrator:marathon_scaler.policies" in str(err.value) and "min_instances 20 > max_instances 10" in \
        str(err.value)
