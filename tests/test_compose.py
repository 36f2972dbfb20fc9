"""docker-compose.yml: valid for docker-compose v1 and the compose-spec schema, in step with the dev
stack's settings, started in dependency order, and scraped by a Prometheus config that is generated from
the Kubernetes monitoring tier and checked in (the drift test)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.zookeeper import SRVR_SCRIPT
from orchestrator.cli import main
from orchestrator.toolchain.compose import OUT_DIR, drift, generate, with_static_targets
from orchestrator.toolchain.render import PROJECT_DIR, load_stack_config
from tests.support.tools import require_tool

COMPOSE = PROJECT_DIR / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def dev_settings():
    from components.settings import settings_from_config

    config, _, source = load_stack_config("dev")
    return settings_from_config(config, source)


def _docker_compose(path: Path) -> subprocess.CompletedProcess:
    tool = require_tool("docker-compose", hint="apt-get install docker-compose (scripts/install-system-tools.sh)")
    return subprocess.run([tool, "-f", str(path), "config", "-q"], capture_output=True, text=True, cwd=path.parent)


def _schema(path: Path) -> subprocess.CompletedProcess:
    tool = require_tool("check-jsonschema", str(CHECK_JSONSCHEMA), hint="pip install -e '.[test]'")
    return subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True, text=True)


def test_docker_compose_v1_accepts_the_file(tmp_path):
    proc = _docker_compose(COMPOSE)
    assert proc.returncode == 0, proc.stderr
    # The validator is live: a dependency on a service that does not exist is rejected.
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["marathon"]["depends_on"]["zookeepr"] = {"condition": "service_healthy"}
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    (tmp_path / "deploy").symlink_to(PROJECT_DIR / "deploy")
    proc = _docker_compose(tmp_path / "docker-compose.yml")
    assert proc.returncode != 0 and "zookeepr" in proc.stderr


def test_compose_spec_schema_accepts_the_file(tmp_path):
    proc = _schema(COMPOSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["zookeeper"]["healthcheck"]["tset"] = ["CMD", "true"]  # misspelt key
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    assert _schema(tmp_path / "docker-compose.yml").returncode != 0


def test_images_are_the_settings_images(compose, dev_settings):
    s = dev_settings
    expected = {"zookeeper": s.zookeeper.image, "mesos-master": s.mesos_master.image,
                "mesos-agent": s.mesos_agent.image, "marathon": s.marathon.image,
                "mesos-exporter": s.exporters.image, "marathon-exporter": s.exporters.image,
                "prometheus": s.monitoring.image, "alertmanager": s.alertmanager.image, "grafana": s.grafana.image}
    assert {name: svc["image"] for name, svc in compose["services"].items()} == expected
    for image in expected.values():
        assert ":" in image and not image.endswith(":latest")


def test_seed_ports_on_localhost(compose):
    published = {p for svc in compose["services"].values() for p in svc.get("ports", [])}
    assert {"127.0.0.1:8080:8080", "127.0.0.1:5050:5050", "127.0.0.1:9091:9090"} <= published
    assert all(p.startswith("127.0.0.1:") for p in published), "local stack ports bind to loopback only"


def test_start_order_waits_for_health(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond == {"condition": "service_healthy"}, f"{name} → {dep}"
            assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"

    def order(name: str, seen=()) -> int:
        deps = services[name].get("depends_on") or {}
        assert name not in seen, f"dependency cycle through {name}"
        return 1 + max((order(d, (*seen, name)) for d in deps), default=0)

    assert order("zookeeper") < order("mesos-master") < order("mesos-agent")
    assert order("mesos-master") < order("marathon") and order("zookeeper") < order("marathon")
    # The ZooKeeper healthcheck is the Kubernetes tier's readiness test.
    zk_test = services["zookeeper"]["healthcheck"]["test"]
    assert zk_test == ["CMD", "bash", "-c", SRVR_SCRIPT.format(port=2181)]


def test_prometheus_reads_the_generated_files(compose):
    prom = compose["services"]["prometheus"]
    assert "./deploy/compose:/etc/prometheus:ro" in prom["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    config = yaml.safe_load((PROJECT_DIR / OUT_DIR / "prometheus.yml").read_text())
    hosts = {t.rsplit(":", 1)[0] for job in config["scrape_configs"] for sc in job.get("static_configs", [])
             for t in sc["targets"]}
    assert hosts - {"localhost"} <= set(compose["services"]), "every scrape target is a compose service"
    assert {job["job_name"] for job in config["scrape_configs"]} == {"prometheus", "zookeeper", "mesos-master",
                                                                    "marathon", "marathon-exporter"}


def test_alertmanager_and_grafana_read_the_tiers_files(compose):
    from components import dashboards
    from components.alertmanager import INHIBITIONS

    services = compose["services"]
    config = yaml.safe_load((PROJECT_DIR / OUT_DIR / "prometheus.yml").read_text())
    # Prometheus alerts the compose Alertmanager, which routes with the alertmanager tier's config.
    assert config["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    assert "./deploy/compose/alertmanager:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]
    routes = yaml.safe_load((PROJECT_DIR / OUT_DIR / "alertmanager" / "alertmanager.yml").read_text())
    assert len(routes["inhibit_rules"]) == len(INHIBITIONS) and routes["route"]["receiver"] == "nobody"
    # Grafana: the same dashboards as the cluster, the password only from the secret file (no default).
    grafana = services["grafana"]
    assert "./deploy/compose/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    boards = {p.name for p in (PROJECT_DIR / OUT_DIR / "grafana" / "dashboards").iterdir()}
    assert boards == set(dashboards.files()) and len(boards) == 5
    assert "environment" not in grafana
    assert grafana["secrets"] == [{"source": "grafana_admin_password", "target": "admin-password"}]
    assert compose["secrets"]["grafana_admin_password"]["file"] == "./.secrets/grafana-admin-password"
    ini = (PROJECT_DIR / OUT_DIR / "grafana" / "grafana.ini").read_text()
    assert "admin_password = $__file{/run/secrets/admin-password}" in ini
    source = yaml.safe_load((PROJECT_DIR / OUT_DIR / "grafana/provisioning/datasources/datasource.yaml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def test_amtool_accepts_the_compose_alertmanager_config(tmp_path):
    amtool = require_tool("amtool", hint="scripts/install-system-tools.sh installs Debian's prometheus-alertmanager")
    path = tmp_path / "alertmanager.yml"
    path.write_text(generate()["alertmanager/alertmanager.yml"])
    proc = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checked_in_prometheus_files_do_not_drift():
    assert drift() == [], "run `orchestrator compose-prometheus` and commit deploy/compose/"
    assert main(["compose-prometheus", "--check"]) == 0


def test_drift_is_detected(tmp_path, capsys):
    shutil.copy(PROJECT_DIR / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    shutil.copytree(PROJECT_DIR / OUT_DIR, tmp_path / OUT_DIR)
    assert drift(tmp_path) == []
    # A settings change that reaches the rules (the quorum alert) makes the checked-in rules stale.
    doc = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())
    doc["config"]["orchestrator:zookeeper"]["replicas"] = 3
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    assert drift(tmp_path) == [str(OUT_DIR / "alerts.yml")]


def test_static_targets_replace_kubernetes_discovery(dev_settings):
    from components.k8s import PlatformContext
    from components.monitoring import prometheus_config
    config = prometheus_config(PlatformContext.of(dev_settings), dev_settings.monitoring)
    out = with_static_targets(config, {"zookeeper": ["zk:7000"]})
    assert [j["job_name"] for j in out["scrape_configs"]] == ["prometheus", "zookeeper"]
    zk = out["scrape_configs"][1]
    assert zk["static_configs"] == [{"targets": ["zk:7000"], "labels": {"pod": "zookeeper"}}]
    assert "kubernetes_sd_configs" not in zk and "relabel_configs" not in zk
    assert "kubernetes_sd_configs" in config["scrape_configs"][1], "the input is not modified"


def test_promtool_accepts_the_compose_config(tmp_path):
    promtool = require_tool("promtool", hint="apt-get install prometheus")
    for name, text in generate().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        proc = subprocess.run([promtool, *args], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
