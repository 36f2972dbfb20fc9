"""Authentication: secrets come only from Pulumi secret config, end up only in Kubernetes Secrets, and
never appear in clear in the render or the stack outputs; production without them is refused."""
import json

import pytest

from components.settings import OPTIONAL_SECRET_KEYS, SECRET_KEYS, SettingsError
from orchestrator.toolchain.render import (
    REDACTED,
    SCOPE_CONFIG,
    build_manifests,
    load_stack_config,
    plain,
    run_program,
    write_render,
)
from tests.support.harness import one, stack

# Distinctive values, so a leak anywhere is found by a plain substring search (every key prod may hold).
VALUES = {key: f"S3cr3t-{key}-x9Q" for key in (*SECRET_KEYS, *OPTIONAL_SECRET_KEYS)}


def secret_keys_of_prod():
    return [k.split(":", 1)[1] for k in load_stack_config("prod")[1]]


def render_prod_with_real_secrets(tmp_path, scope="tree"):
    """prod with real secret values: the whole tree (what the render writes) or what `pulumi up` of
    the GitOps-delivered prod stack applies (namespaces, credentials, Argo CD objects)."""
    config, secret_keys, _ = load_stack_config("prod")
    # Every required secret, and the optional ones prod's tiers need (Grafana, Alertmanager's receivers).
    assert {f"orchestrator:{k}" for k in SECRET_KEYS} <= set(secret_keys) <= {f"orchestrator:{k}" for k in VALUES}
    for full_key in secret_keys:
        config[full_key] = VALUES[full_key.split(":", 1)[1]]
    config[SCOPE_CONFIG] = scope
    result = build_manifests(run_program("prod", config, secret_keys))
    write_render(result, tmp_path / "prod")
    return result


@pytest.mark.parametrize("scope,min_files", [("tree", 10), ("deploy", 4)])
def test_configured_secret_values_never_appear_in_render_or_outputs(tmp_path, scope, min_files):
    result = render_prod_with_real_secrets(tmp_path, scope)
    files = [p for p in (tmp_path / "prod").rglob("*") if p.is_file()]
    assert len(files) >= min_files
    text = "\n".join(p.read_text() for p in files)
    for key in secret_keys_of_prod():
        value = VALUES[key]
        assert value not in text, f"{key} leaked into the render"
        assert value not in json.dumps(result.stack_outputs)
    # The Secrets exist and hold redacted values only.
    secrets = [m for m in result.manifests if m["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {
        "mesos-master-auth", "mesos-agent-auth", "marathon-auth", "prometheus-scrape-auth", "zk-sync-auth",
        "orchestrator-api", "grafana-auth", "alertmanager-auth"}
    for s in secrets:
        assert s["stringData"] and set(s["stringData"].values()) == {REDACTED}
    # Inside the program the values really are the configured ones (wired, then redacted on output).
    raw = next(r for r in result.registrations if r.name == "marathon-auth").inputs["stringData"]
    assert VALUES["marathon_http_password"] in json.dumps(raw)


def test_no_secret_in_plain_env_or_args():
    result = stack("prod")
    for m in result.manifests:
        if m["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        for c in m["spec"]["template"]["spec"]["containers"]:
            for env in c.get("env", []):
                if any(w in env["name"] for w in ("PASSWORD", "SECRET", "CREDENTIALS", "MARATHON_ZK")):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (m["metadata"]["name"], env["name"])
            assert not any("@" in a for a in c.get("args", [])), "credentials in a command line"


def test_production_components_authenticate():
    result = stack("prod")
    master = one(result, "StatefulSet", "mesos-master")["spec"]["template"]["spec"]["containers"][0]
    assert {"--authenticate_frameworks=true", "--authenticate_agents=true", "--authenticate_http_readwrite=true",
            "--zk=file:///etc/mesos/auth/zk"} <= set(master["args"])
    agent = one(result, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    assert "--credential=/etc/mesos/auth/credential" in agent["args"]
    marathon = one(result, "Deployment", "marathon")["spec"]["template"]["spec"]["containers"][0]
    assert "--mesos_authentication" in marathon["args"] and "--zk" not in marathon["args"]
    assert {e["name"] for e in marathon["env"]} >= {"MARATHON_ZK", "MARATHON_HTTP_CREDENTIALS"}
    dev_master = one(stack("dev"), "StatefulSet", "mesos-master")["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--authenticate") for a in dev_master["args"])
    assert not [m for m in stack("dev").manifests if m["kind"] == "Secret"]


def test_secret_files_have_the_formats_mesos_and_marathon_read(tmp_path):
    result = render_prod_with_real_secrets(tmp_path)
    raw = {r.name: plain(r.inputs["stringData"], redact=False)
           for r in result.registrations if r.type == "kubernetes:core/v1:Secret"}

    def value(name, key):
        return raw[name][key]
    creds = json.loads(value("mesos-master-auth", "credentials"))
    assert {c["principal"]: c["secret"] for c in creds["credentials"]} == {
        "marathon": VALUES["mesos_marathon_secret"], "agent": VALUES["mesos_agent_secret"]}
    assert value("mesos-master-auth", "zk").startswith(f"zk://mesos:{VALUES['zookeeper_mesos_password']}@zookeeper-0.")
    assert json.loads(value("mesos-agent-auth", "credential")) == {"principal": "agent",
                                                                  "secret": VALUES["mesos_agent_secret"]}
    assert value("marathon-auth", "http-credentials") == f"admin:{VALUES['marathon_http_password']}"
    assert value("marathon-auth", "zk").endswith("/marathon")


def test_production_without_a_secret_names_the_missing_key():
    config, secret_keys, source = load_stack_config("prod")
    del config["orchestrator:mesos_agent_secret"]
    secret_keys.remove("orchestrator:mesos_agent_secret")
    with pytest.raises(SettingsError) as info:
        run_program("prod", config, secret_keys)
    message = str(info.value)
    assert message.startswith("Pulumi.prod.yaml: orchestrator:mesos_agent_secret: required")
    assert "pulumi config set --secret mesos_agent_secret" in message
    assert len(info.value.problems) == 1


def test_a_secret_set_in_plain_text_is_refused():
    config, secret_keys, _ = load_stack_config("prod")
    secret_keys.remove("orchestrator:marathon_http_password")
    with pytest.raises(SettingsError) as info:
        run_program("prod", config, secret_keys)
    assert "orchestrator:marathon_http_password: must be a secret" in str(info.value)
