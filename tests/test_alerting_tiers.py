"""The alertmanager and grafana tiers wired into the platform: settings that refuse a stack missing what they need
(naming the key), the rendered stacks (replicas, budgets, Prometheus' alerting block, the Secrets of the
credentials tier, the NetworkPolicy flows), and no credential outside a Secret."""
from __future__ import annotations

import json

import pytest
import yaml

from components.settings import SECRET_KEYS, SettingsError, settings_from_config
from orchestrator.toolchain.render import SCOPE_CONFIG, build_manifests, load_stack_config, run_program
from tests.support.harness import objects, one, stack

ADMIN_PASSWORD, SLACK_URL = "gr4fana-Adm1n-pw", "https://hooks.slack.example/services/T0/B0/s3cr3t"
AUTH_ON = {f"orchestrator:{k}": "x" for k in SECRET_KEYS} | {"orchestrator:security": json.dumps({"auth": True})}


@pytest.mark.parametrize(("config", "secrets", "message"), [
    ({"orchestrator:grafana": {"enabled": True}}, {},
     "orchestrator:grafana.enabled: needs authentication on (security.auth)"),
    ({**AUTH_ON, "orchestrator:grafana": {"enabled": True}}, set(AUTH_ON) - {"orchestrator:security"},
     "orchestrator:grafana_admin_password: required"),
    ({**AUTH_ON, "orchestrator:alertmanager": {"enabled": True, "receivers": [
        {"name": "oncall", "slack_channel": "#oncall"}]}}, set(AUTH_ON) - {"orchestrator:security"},
     "orchestrator:alertmanager_slack_api_url: required"),
    ({**AUTH_ON, "orchestrator:alertmanager": {"enabled": True, "receivers": [
        {"name": "team", "email_to": "team@example.org"}]}}, set(AUTH_ON) - {"orchestrator:security"},
     "smtp: an email receiver needs the smtp settings"),
    ({**AUTH_ON, "orchestrator:grafana": {"enabled": True}, "orchestrator:grafana_admin_password": "plain"},
     set(AUTH_ON) - {"orchestrator:security"}, "orchestrator:grafana_admin_password: must be a secret"),
    ({"orchestrator:production": True, "orchestrator:alertmanager": {"enabled": True}}, {},
     "orchestrator:alertmanager.replicas: must be at least 2 in production"),
    ({"orchestrator:grafana": {"ingress": {"host": "g.example.org", "tls_secret": "g-tls"}}}, {},
     "orchestrator:grafana.ingress: needs security.allow_ingress"),
    ({"orchestrator:alertmanager": {"receivers": [{"name": "h", "webhook_url": "https://u:p@hook.example/x"}]}},
     {}, "webhook_url carries credentials"),
])
def test_settings_refuse_what_the_tiers_cannot_run_with(config, secrets, message):
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    with pytest.raises(SettingsError) as err:
        settings_from_config(raw, "Pulumi.x.yaml", set(secrets))
    assert message in str(err.value)


def test_no_receiver_needs_no_secret_and_notifies_nobody():
    s = settings_from_config({"orchestrator:alertmanager": json.dumps({"enabled": True})}, "Pulumi.x.yaml")
    assert s.alertmanager.enabled and not s.auth_enabled and s.alertmanager.receivers == []


def _prometheus_config(result) -> dict:
    return yaml.safe_load(one(result, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])


def _policy(result, name: str) -> dict:
    return one(result, "NetworkPolicy", name)["spec"]


def _rules(spec: dict, direction: str) -> list[tuple[str, int, str]]:
    """(peer instance label or namespace or cidr, port, protocol) of each rule."""
    out = []
    for rule in spec.get(direction, []):
        for peer in rule.get("from" if direction == "ingress" else "to", []):
            who = ((peer.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/instance")
                   or (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                   or peer.get("ipBlock", {}).get("cidr"))
            out += [(who, p["port"], p["protocol"]) for p in rule["ports"]]
    return out


def test_prod_runs_two_gossiping_alertmanagers_that_prometheus_alerts_each():
    result = stack("prod")
    sts = one(result, "StatefulSet", "alertmanager")
    assert sts["spec"]["replicas"] == 2
    pdb = one(result, "PodDisruptionBudget", "alertmanager-pdb")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    peers = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--cluster.peer=")]
    assert peers == [f"alertmanager-{i}.alertmanager-headless.orchestrator.svc.cluster.local:9094" for i in (0, 1)]
    # Each replica gets every alert (they deduplicate among themselves), not one behind a Service.
    (am,) = _prometheus_config(result)["alerting"]["alertmanagers"]
    assert am["static_configs"] == [{"targets": [p.replace(":9094", ":9093") for p in peers]}]
    # The Slack receiver reads its URL from the credentials tier's Secret, mounted as a file.
    config = yaml.safe_load(one(result, "ConfigMap", "alertmanager-config")["data"]["alertmanager.yml"])
    assert config["receivers"][1]["slack_configs"][0]["api_url_file"] == "/etc/alertmanager/secrets/slack-api-url"
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["receivers"]["secret"]["secretName"] == "alertmanager-auth"

    assert sorted(_rules(_policy(result, "alertmanager-ingress"), "ingress")) == [
        ("alertmanager", 9094, "TCP"), ("alertmanager", 9094, "UDP"), ("prometheus", 9093, "TCP")]
    assert sorted(_rules(_policy(result, "alertmanager-egress"), "egress")) == [
        ("0.0.0.0/0", 443, "TCP"), ("alertmanager", 9094, "TCP"), ("alertmanager", 9094, "UDP")]
    assert ("alertmanager", 9093, "TCP") in _rules(_policy(result, "prometheus-egress"), "egress")


def test_prod_grafana_reads_prometheus_and_nobody_reaches_it_without_an_ingress():
    result = stack("prod")
    deployment = one(result, "Deployment", "grafana")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["admin"]["secret"]["secretName"] == "grafana-auth"
    source = yaml.safe_load(one(result, "ConfigMap", "grafana-provisioning")["data"]["datasource.yaml"])
    assert source["datasources"][0]["url"] == "http://prometheus.orchestrator.svc.cluster.local:9090"
    assert _rules(_policy(result, "grafana-egress"), "egress") == [("prometheus", 9090, "TCP")]
    assert ("grafana", 9090, "TCP") in _rules(_policy(result, "prometheus-ingress"), "ingress")
    assert [p["metadata"]["name"] for p in objects(result, "NetworkPolicy") if p["metadata"]["name"] == "grafana-ingress"] == []
    assert objects(result, "Ingress") == []
    # Both are tiers of the registry: their own Argo CD Applications.
    apps = {a["metadata"]["name"] for a in objects(result, "Application")}
    assert {"orchestrator-alertmanager", "orchestrator-grafana"} <= apps


def test_dev_runs_one_alertmanager_without_gossip_and_no_grafana():
    result = stack("dev")
    (container,) = one(result, "StatefulSet", "alertmanager")["spec"]["template"]["spec"]["containers"]
    assert "--cluster.listen-address=" in container["args"]
    assert not any(a.startswith("--cluster.peer") for a in container["args"])
    assert objects(result, "Deployment") and not [d for d in objects(result, "Deployment")
                                                 if d["metadata"]["name"] == "grafana"]
    assert _prometheus_config(result)["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["alertmanager-0.alertmanager-headless.orchestrator-dev.svc.cluster.local:9093"]}]
    assert all(p != 9094 for _, p, _ in _rules(_policy(result, "alertmanager-ingress"), "ingress"))


def test_secrets_reach_only_the_credentials_tier():
    config, secret_keys, _ = load_stack_config("prod")
    for key in SECRET_KEYS:
        config[f"orchestrator:{key}"] = f"S3cr3t-{key}"
    config["orchestrator:grafana_admin_password"] = ADMIN_PASSWORD
    config["orchestrator:alertmanager_slack_api_url"] = SLACK_URL
    config[SCOPE_CONFIG] = "tree"
    result = build_manifests(run_program("prod", config, list(secret_keys)))
    secrets = {s["metadata"]["name"]: s for s in objects(result, "Secret")}
    assert set(secrets["grafana-auth"]["stringData"]) == {"admin-password"}
    assert set(secrets["alertmanager-auth"]["stringData"]) == {"slack-api-url"}
    others = json.dumps([m for m in result.manifests if m["kind"] != "Secret"])
    assert ADMIN_PASSWORD not in others and SLACK_URL not in others and "s3cr3t" not in others


def test_two_real_alertmanagers_with_the_rendered_flags_share_a_silence(tmp_path):
    """The cluster flags the tier renders, run by two real Alertmanagers on loopback (each rendered address
    swapped for a loopback port): they form one cluster and a silence set on one holds on the other."""
    import subprocess
    import time
    import urllib.request

    from components import k8s as kx
    from components.alertmanager import alertmanager_args, config
    from components.settings import AlertmanagerSettings
    from tests.support.harness import settings
    from tests.support.tools import require_tool

    binary = require_tool("prometheus-alertmanager",
                          hint="scripts/install-system-tools.sh installs Debian's prometheus-alertmanager")
    a = AlertmanagerSettings(enabled=True, replicas=2)
    ctx = kx.PlatformContext.of(settings())
    rendered = alertmanager_args(ctx, a)
    web, gossip = [free_port() for _ in range(2)], [free_port() for _ in range(2)]
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config([])))

    def local(i: int) -> list[str]:
        swap = {"--config.file": str(tmp_path / "alertmanager.yml"), "--storage.path": str(tmp_path / f"data{i}"),
                "--web.listen-address": f"127.0.0.1:{web[i]}", "--cluster.listen-address": f"127.0.0.1:{gossip[i]}",
                "--cluster.advertise-address": f"127.0.0.1:{gossip[i]}"}
        out, peers = [], iter(gossip)
        for arg in rendered:
            flag, _, _ = arg.partition("=")
            if flag == "--cluster.peer":
                out.append(f"--cluster.peer=127.0.0.1:{next(peers)}")
            else:
                assert flag in swap, f"a rendered flag this test does not run: {arg}"
                out.append(f"{flag}={swap[flag]}")
        return out

    assert sum(arg.startswith("--cluster.peer=") for arg in rendered) == 2
    procs = [subprocess.Popen([binary, *local(i)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(2)]

    def get(i: int, path: str):
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{web[i]}/api/v2/{path}", timeout=2).read())

    def wait(check, what: str):
        deadline = time.monotonic() + 60
        while True:
            try:
                if check():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.3)

    try:
        wait(lambda: all(len(get(i, "status")["cluster"].get("peers") or []) == 2 for i in range(2)),
             "both replicas to see two peers")
        now = time.time()
        silence = {"matchers": [{"name": "alertname", "value": "ZooKeeperServerDown", "isRegex": False}],
                   "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
                   "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
                   "createdBy": "test", "comment": "maintenance"}
        request = urllib.request.Request(f"http://127.0.0.1:{web[0]}/api/v2/silences", method="POST",
                                         data=json.dumps(silence).encode(), headers={"Content-Type": "application/json"})
        silence_id = json.loads(urllib.request.urlopen(request, timeout=5).read())["silenceID"]
        wait(lambda: silence_id in {s["id"] for s in get(1, "silences")}, "the silence to reach the other replica")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
    assert all(p.returncode is not None for p in procs)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
