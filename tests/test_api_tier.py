"""The API in the platform (issue 10 item 3): the orchestrator service runs `orchestrator api serve` with its
config, keys and accounts from the credentials tier's Secret (authentication on) or with no account at all
(authentication off), probes on /healthz and /readyz, a headless Service for the probes, settings errors that
name their keys. The network flows are checked in tests/test_network.py, the outputs in tests/test_platform.py."""
import json
from collections.abc import Sequence

import pytest

from components.settings import SECRET_KEYS, SettingsError, settings_from_config
from orchestrator.services.api.config import load_config, parse_keys
from orchestrator.toolchain.render import (
    REDACTED,
    SCOPE_CONFIG,
    build_manifests,
    load_stack_config,
    plain,
    run_program,
)
from tests.support.harness import one, stack

VALUES = {key: f"S3cr3t-{key}-x9Q" for key in SECRET_KEYS}
# What the API accepts: a real argon2id hash shape and a key of at least 32 characters.
VALUES["api_admin_password_hash"] = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
VALUES["api_signing_key"] = "k" * 40 + "-x9Q-signing"


def prod_with_secrets(scope: str = "tree", extra: dict[str, str] | None = None, secret: Sequence[str] = ()):
    config, secret_keys, _ = load_stack_config("prod")
    secret_keys = [*secret_keys, *secret]
    for key in SECRET_KEYS:
        config[f"orchestrator:{key}"] = VALUES[key]
    config[SCOPE_CONFIG] = scope
    config.update(extra or {})
    return build_manifests(run_program("prod", config, secret_keys))


def api_secret_inputs(result) -> dict[str, str]:
    reg = next(r for r in result.registrations if r.name == "orchestrator-api")
    data = plain(reg.inputs["stringData"], redact=False)  # the values inside the program, unwrapped from Pulumi's secret marker
    assert set(data) == {"api.yaml", "signing-keys", "mesos-credentials", "marathon-credentials"}
    return data


def service_container(result) -> dict:
    rollout = one(result, "Rollout", "orchestrator-service")
    (container,) = rollout["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("scope", ["tree", "deploy"])
def test_the_api_secret_holds_config_keys_and_credentials_in_both_delivery_modes(tmp_path, scope):
    result = prod_with_secrets(scope)
    secret = one(result, "Secret", "orchestrator-api")
    assert secret["metadata"]["namespace"] == "orchestrator"
    assert set(secret["stringData"]) == {"api.yaml", "signing-keys", "mesos-credentials", "marathon-credentials"}
    assert set(secret["stringData"].values()) == {REDACTED}  # what the render shows
    data = api_secret_inputs(result)  # what Pulumi applies
    (tmp_path / "signing-keys").write_text(data["signing-keys"])
    (tmp_path / "api.yaml").write_text(data["api.yaml"].replace("/etc/orchestrator/api/signing-keys",
                                                                str(tmp_path / "signing-keys")))
    config = load_config(tmp_path / "api.yaml")  # the API's own loader accepts it
    assert [(a.name, a.role, a.password_hash) for a in config.accounts] == [
        ("admin", "admin", VALUES["api_admin_password_hash"])]
    keys = parse_keys(data["signing-keys"], "signing-keys")
    assert list(keys.keys.values()) == [VALUES["api_signing_key"].encode()]
    assert data["mesos-credentials"] == f"admin:{VALUES['mesos_http_password']}"
    assert data["marathon-credentials"] == f"admin:{VALUES['marathon_http_password']}"
    assert config.marathon.credentials_file == "/etc/orchestrator/api/marathon-credentials"
    assert config.zookeeper.servers == [
        f"zookeeper-{i}.zookeeper-headless.orchestrator.svc.cluster.local:2181" for i in range(3)]
    assert config.mesos.masters == [
        f"http://mesos-master-{i}.mesos-master-headless.orchestrator.svc.cluster.local:5050" for i in range(3)]
    assert config.marathon.urls == ["http://marathon.orchestrator.svc.cluster.local:8080"]
    assert config.prometheus.url == "http://prometheus.orchestrator.svc.cluster.local:9090"
    gates = {g.name: g for g in config.prometheus.canary_gates}
    assert set(gates) == {"success-rate", "error-rate", "latency-p95", "latency-p99"}
    assert gates["error-rate"].threshold == "<= 0.05"
    assert "{{" not in gates["latency-p99"].query and 'pod=~"orchestrator-service-[a-z0-9]+-.+"' in \
        gates["latency-p99"].query
    assert config.ui_dir == "/opt/orchestrator/ui"


def test_a_signing_key_rotation_is_the_key_file_itself():
    rotation = f"new {'n' * 40}\nold {VALUES['api_signing_key']}"
    result = prod_with_secrets(extra={"orchestrator:api_signing_key": rotation})
    keys = parse_keys(api_secret_inputs(result)["signing-keys"], "signing-keys")
    assert keys.current == "new" and set(keys.keys) == {"new", "old"}


def test_no_api_secret_value_in_render_args_or_outputs(tmp_path):
    result = prod_with_secrets()
    text = json.dumps(result.manifests) + json.dumps(result.stack_outputs)
    for key in ("api_signing_key", "api_admin_password_hash"):
        assert VALUES[key] not in text
    container = service_container(result)
    assert VALUES["api_signing_key"] not in json.dumps(container)


def test_with_authentication_the_rollout_serves_the_api_from_the_secret():
    result = stack("prod")
    container = service_container(result)
    assert container["command"] == ["orchestrator"]
    assert container["args"] == ["api", "serve", "--config", "/etc/orchestrator/api/api.yaml",
                                 "--listen", "0.0.0.0:8080"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    spec = one(result, "Rollout", "orchestrator-service")["spec"]["template"]["spec"]
    (api,) = [v for v in spec["volumes"] if v["name"] == "api"]
    assert api["secret"]["secretName"] == "orchestrator-api"
    assert {i["key"] for i in api["secret"]["items"]} == {"api.yaml", "signing-keys", "mesos-credentials",
                                                          "marathon-credentials"}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "api")
    assert mount == {"name": "api", "mountPath": "/etc/orchestrator/api", "readOnly": True}
    assert "subPath" not in json.dumps(container)  # a subPath mount never sees a Secret's update


def test_without_authentication_the_api_has_no_account_and_a_key_per_pod(tmp_path):
    result = stack("dev")
    config_map = one(result, "ConfigMap", "orchestrator-service-config")
    text = config_map["data"]["api.yaml"]
    (tmp_path / "api.yaml").write_text(text)
    config = load_config(tmp_path / "api.yaml")
    assert config.accounts == []  # nobody can log in: no default credential
    assert config.signing_key_file == "/run/orchestrator-api/signing-keys"
    assert config.marathon.credentials_file is None
    container = service_container(result)
    assert container["command"][:2] == ["sh", "-c"]
    assert "secrets.token_urlsafe(48)" in container["command"][2]
    assert container["command"][2].endswith(
        "exec orchestrator api serve --config /etc/orchestrator/api/api.yaml --listen 0.0.0.0:8080")
    spec = one(result, "Rollout", "orchestrator-service")["spec"]["template"]["spec"]
    keys = next(v for v in spec["volumes"] if v["name"] == "keys")
    assert keys["emptyDir"]["medium"] == "Memory"
    assert not [o for o in result.manifests if o["kind"] == "Secret"]


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_a_headless_service_next_to_the_stable_and_canary_services(name):
    result = stack(name)
    services = {s["metadata"]["name"]: s for s in result.manifests if s["kind"] == "Service"
                and s["metadata"]["name"].startswith("orchestrator-service")}
    assert set(services) == {"orchestrator-service", "orchestrator-service-canary", "orchestrator-service-headless"}
    headless = services["orchestrator-service-headless"]["spec"]
    assert headless["clusterIP"] == "None"
    rollout = one(result, "Rollout", "orchestrator-service")
    # It selects every pod of the Rollout (stable and canary): Argo Rollouts manages only the other two.
    assert headless["selector"] == rollout["spec"]["selector"]["matchLabels"]
    strategy = rollout["spec"]["strategy"]["canary"]
    assert "orchestrator-service-headless" not in (strategy["stableService"], strategy["canaryService"])


def test_the_probes_publish_through_the_headless_service():
    result = prod_with_secrets(extra={"orchestrator:probe": json.dumps({"enabled": True}),
                                      "orchestrator:probe_token": "t0ken-x9Q"},
                               secret=["orchestrator:probe_token"])
    (container,) = one(result, "DaemonSet", "probe")["spec"]["template"]["spec"]["containers"]
    api = container["args"][container["args"].index("--api") + 1]
    assert api == "http://orchestrator-service-headless.orchestrator.svc.cluster.local:8080"


@pytest.mark.parametrize("scope", ["tree", "deploy"])
def test_an_ingress_only_when_configured_and_allowed_and_always_with_tls(scope):
    assert not [o for o in prod_with_secrets(scope).manifests if o["kind"] == "Ingress"]
    config, _, _ = load_stack_config("prod")
    service = {**json.loads(config["orchestrator:service"]),
               "api": {"ingress": {"host": "orchestrator.example.com", "tls_secret": "orchestrator-tls"}}}
    security = {**json.loads(config["orchestrator:security"]), "allow_ingress": True}
    result = prod_with_secrets(scope, {"orchestrator:service": json.dumps(service),
                                       "orchestrator:security": json.dumps(security)})
    assert result.stack_outputs["ui_url"] == "https://orchestrator.example.com/"
    if scope == "deploy":
        return  # GitOps: Argo CD applies the Ingress from the tree
    ingress = one(result, "Ingress", "orchestrator-service")
    assert ingress["spec"]["tls"] == [{"hosts": ["orchestrator.example.com"], "secretName": "orchestrator-tls"}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "orchestrator.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "orchestrator-service", "port": {"name": "http"}}
    # The controller's pods may reach the API's port; other pods still may not.
    from tests.support.netpol import Endpoint, allowed, workload_endpoints

    api = next(e for e in workload_endpoints(result.manifests, "10.1.2.3", "100.64.0.0/24")
               if e.name == "orchestrator-service")
    controller = Endpoint("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}, "100.64.9.10")
    assert allowed(result.manifests, controller, api, 8080)
    assert not allowed(result.manifests, Endpoint("default", {"app": "x"}, "100.64.9.11"), api, 8080)
    assert not allowed(result.manifests, controller, api, 2181)


def test_client_namespaces_reach_the_api_and_nothing_else_does():
    from tests.support.netpol import Endpoint, allowed, workload_endpoints

    config, _, _ = load_stack_config("prod")
    security = {**json.loads(config["orchestrator:security"]), "client_namespaces": ["ops-tools"]}
    result = prod_with_secrets(extra={"orchestrator:security": json.dumps(security)})
    api = next(e for e in workload_endpoints(result.manifests, "10.1.2.3", "100.64.0.0/24")
               if e.name == "orchestrator-service")
    assert allowed(result.manifests, Endpoint("ops-tools", {"app": "script"}, "100.64.9.12"), api, 8080)
    assert not allowed(result.manifests, Endpoint("elsewhere", {"app": "script"}, "100.64.9.13"), api, 8080)


def _errors(**config: str) -> str:
    with pytest.raises(SettingsError) as info:
        settings_from_config({f"orchestrator:{k}": v for k, v in config.items()}, "Pulumi.t.yaml")
    return str(info.value)


def test_settings_errors_name_their_keys():
    assert "Pulumi.t.yaml: orchestrator:service.resources.memory_limit: 128Mi is below 256Mi" in _errors(
        service='{"resources": {"memory_request": "64Mi", "memory_limit": "128Mi"}}')
    assert "orchestrator:service.api.ingress: needs orchestrator:security.allow_ingress" in _errors(
        service='{"api": {"ingress": {"host": "a.example.com", "tls_secret": "tls"}}}')
    assert "orchestrator:service.api.admin_account:" in _errors(service='{"api": {"admin_account": "Root!"}}')
    assert "orchestrator:service.api.revoked_tokens[0]:" in _errors(service='{"api": {"revoked_tokens": ["a b"]}}')
    assert "orchestrator:service.api.unknown: unknown key" in _errors(service='{"api": {"unknown": 1}}')


def test_production_without_the_api_secrets_names_them():
    message = _errors(production="true")
    for key in ("api_signing_key", "api_admin_password_hash"):
        assert f"orchestrator:{key}: required when authentication is on" in message


def test_with_zk_sync_the_api_reads_its_lag_through_a_service_and_only_that_port():
    from components.platform import Platform, PlatformArgs
    from tests.support.harness import run, settings
    from tests.support.netpol import allowed, workload_endpoints

    s = settings(namespace="p", zk_sync={"enabled": True, "source": "zk-old:2181"})
    docs = run(lambda: Platform("orchestrator", PlatformArgs(s, scope="tree"))).manifests
    config = json.loads(one_named(docs, "ConfigMap", "orchestrator-service-config")["data"]["api.yaml"])
    assert config["zk_sync_metrics_url"] == "http://zk-sync.p.svc.cluster.local:9143/metrics"
    sync_service = one_named(docs, "Service", "zk-sync")
    assert [p["port"] for p in sync_service["spec"]["ports"]] == [9143]
    eps = {e.name: e for e in workload_endpoints(docs, "10.1.2.3", "100.64.0.0/24")}
    api, sync = eps["orchestrator-service"], eps["zk-sync"]
    assert allowed(docs, api, sync, 9143)
    assert not allowed(docs, api, sync, 2181) and not allowed(docs, sync, api, 9143)
    # Nothing else of the platform gets the API's egress: the probes' and users' flows are inbound only.
    assert not allowed(docs, api, eps["exporters"], 9105) and not allowed(docs, api, eps["zookeeper"], 2888)
    # Without zk-sync there is no such target and no dangling flow.
    plain_docs = run(lambda: Platform("orchestrator", PlatformArgs(settings(namespace="p"), scope="tree"))).manifests
    assert "zk_sync_metrics_url" not in json.loads(
        one_named(plain_docs, "ConfigMap", "orchestrator-service-config")["data"]["api.yaml"])


def one_named(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


# --- the rendered command and files, run for real -----------------------------------------------------
def _serve(command: list[str], env_path: str):
    """Start the API as the pod would (the rendered command, paths moved under tmp, a free loopback port) and
    return (process, base URL); the caller stops it."""
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{env_path}"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the API did not start: {proc.stdout.read()}")


def _stop(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _moved(text: str, tmp_path) -> str:
    return (text.replace("/etc/orchestrator/api", str(tmp_path / "etc")).replace("/run/orchestrator-api",
                                                                                  str(tmp_path / "run"))
            .replace("/opt/orchestrator/ui", str(tmp_path / "ui")).replace("0.0.0.0:8080", "127.0.0.1:0"))


def test_the_rendered_dev_command_starts_a_ready_api_nobody_can_log_in_to(tmp_path):
    import os
    import stat

    import httpx

    result = stack("dev")
    (tmp_path / "etc").mkdir()
    (tmp_path / "run").mkdir()
    text = one(result, "ConfigMap", "orchestrator-service-config")["data"]["api.yaml"]
    (tmp_path / "etc" / "api.yaml").write_text(_moved(text, tmp_path))
    command = [_moved(part, tmp_path) for part in service_container(result)["command"]]
    proc, url = _serve(command, os.environ.get("PATH", ""))
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        login = httpx.post(f"{url}/api/v1/login", json={"account": "admin", "password": "admin"}, timeout=30)
        assert login.status_code == 401
    finally:
        _stop(proc)
    key_file = tmp_path / "run" / "signing-keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # the umask: readable by the API's user only
    assert len(parse_keys(key_file.read_text(), "k").keys["pod"]) >= 32


def test_the_api_secret_serves_a_login_for_the_first_admin(tmp_path):
    import os

    import httpx
    from argon2 import PasswordHasher

    password = "correct horse battery staple x9Q"
    hashed = PasswordHasher().hash(password)
    result = prod_with_secrets(extra={"orchestrator:api_admin_password_hash": hashed})
    (tmp_path / "etc").mkdir()
    for key, value in api_secret_inputs(result).items():
        (tmp_path / "etc" / key).write_text(_moved(value, tmp_path))
    container = service_container(result)
    command = [_moved(part, tmp_path) for part in container["command"] + container["args"]]
    proc, url = _serve(command, os.environ.get("PATH", ""))
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        login = httpx.post(f"{url}/api/v1/login", json={"account": "admin", "password": password}, timeout=30)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        whoami = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert whoami.status_code == 200 and whoami.json()["role"] == "admin"
    finally:
        _stop(proc)


# --- the scaler's policies: the API's own ZooKeeper identity -------------------------------------------
def test_with_the_scaler_the_api_reads_its_store_as_its_own_zookeeper_user(tmp_path):
    from kazoo.security import make_digest_acl_credential

    from orchestrator.services.api.config import load_zk_auth

    api_pw, scaler_pw = "Ap1-zk-S3cret-x9Q", "Sc4ler-zk-S3cret-x9Q"
    result = prod_with_secrets(extra={"orchestrator:marathon_scaler": json.dumps({"enabled": True}),
                                      "orchestrator:zookeeper_api_password": api_pw,
                                      "orchestrator:zookeeper_scaler_password": scaler_pw},
                               secret=["orchestrator:zookeeper_api_password", "orchestrator:zookeeper_scaler_password"])
    secret = one(result, "Secret", "orchestrator-api")
    assert set(secret["stringData"]) == {"api.yaml", "signing-keys", "mesos-credentials", "marathon-credentials",
                                         "zookeeper-credentials"}
    reg = next(r for r in result.registrations if r.name == "orchestrator-api")
    data = plain(reg.inputs["stringData"], redact=False)
    (tmp_path / "zk").write_text(data["zookeeper-credentials"])
    assert load_zk_auth(str(tmp_path / "zk")) == [("digest", f"orchestrator-api:{api_pw}")]  # what the API reads
    (tmp_path / "keys").write_text(data["signing-keys"])
    (tmp_path / "api.yaml").write_text(data["api.yaml"].replace("/etc/orchestrator/api/signing-keys",
                                                                str(tmp_path / "keys")))
    config = load_config(tmp_path / "api.yaml")
    assert (config.autoscaler.znode, config.autoscaler.credentials_file) == (
        "/orchestrator/marathon-scaler", "/etc/orchestrator/api/zookeeper-credentials")
    spec = one(result, "Rollout", "orchestrator-service")["spec"]["template"]["spec"]
    (api,) = [v for v in spec["volumes"] if v["name"] == "api"]
    assert "zookeeper-credentials" in {i["key"] for i in api["secret"]["items"]}
    # The scaler gets the API's digest (a hash it puts in its ACLs), never the API's password.
    scaler = next(r for r in result.registrations if r.name == "marathon-scaler-auth")
    scaler_data = plain(scaler.inputs["stringData"], redact=False)
    assert scaler_data["api-acl-id"] == make_digest_acl_credential("orchestrator-api", api_pw)
    assert api_pw not in json.dumps(scaler_data)
    text = json.dumps(result.manifests) + json.dumps(result.stack_outputs)
    assert api_pw not in text and scaler_pw not in text  # nothing in the render or the outputs


def test_without_authentication_the_api_reads_the_scalers_store_without_an_identity():
    config = json.loads(one(stack("dev"), "ConfigMap", "orchestrator-service-config")["data"]["api.yaml"])
    assert config["autoscaler"] == {"znode": "/orchestrator/marathon-scaler"}  # dev runs the scaler, auth off
    prod = json.loads(api_secret_inputs(prod_with_secrets())["api.yaml"])
    assert "autoscaler" not in prod  # no scaler tier: no store, the API knows no policy
