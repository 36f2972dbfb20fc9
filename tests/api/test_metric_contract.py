"""The canary's gates measure this service: its /metrics exposition, scraped over HTTP after real requests,
is fed to Prometheus's own engine (promtool) with the rendered AnalysisTemplates' queries, as the canary
tests do with synthetic series. Healthy traffic passes every gate; traffic of refused tokens (401s) fails
the success-rate gate and only it. WebSocket sessions never reach the latency histogram."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.contracts.service_metrics import REQUEST_DURATION, REQUESTS_TOTAL
from tests.api.conftest import RunningApi
from tests.support.tools import require_tool
from tests.test_canary_gates import CANARY_HASH, CANARY_POD, ROLLOUT, gates_of, holds, rendered, substitute

BEFORE, AFTER = 20, 20     # scrapes before and after the traffic under test


def scrape(api: RunningApi) -> dict[str, float]:
    with api.client() as client:
        text = client.get("/metrics").text
    samples = {}
    for line in text.splitlines():
        if line.startswith((REQUESTS_TOTAL + "{", REQUEST_DURATION + "_bucket{")):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def series(first: dict[str, float], second: dict[str, float], namespace: str) -> list[dict[str, str]]:
    """Each scraped series as Prometheus would store it for the canary pod: `first` for BEFORE scrapes, then
    `second` (the jump is the traffic under test)."""
    out = []
    for name in sorted(second):
        metric, labels = name.split("{", 1)
        pod_labels = f'job="annotated-pods",component="orchestrator-service",namespace="{namespace}",pod="{CANARY_POD}",'
        values = [first.get(name, 0.0)] * BEFORE + [second[name]] * AFTER
        out.append({"series": f"{metric}{{{pod_labels}{labels}", "values": " ".join(f"{v:g}" for v in values)})
    return out


def verdicts(tmp_path: Path, first: dict[str, float], second: dict[str, float]) -> dict[str, str]:
    promtool = require_tool("promtool", hint="apt-get install prometheus")
    templates, namespace, scrape_interval = rendered("dev")
    args = {"namespace": namespace, "rollout": ROLLOUT, "canary-hash": CANARY_HASH}
    gates = gates_of(templates)
    rules = {"groups": [{"name": "gates", "interval": scrape_interval, "rules": [
        {"record": f"gate:{n.replace('-', '_')}", "expr": substitute(m["provider"]["prometheus"]["query"], args)}
        for n, m in gates.items()]}]}
    interval_s = int(scrape_interval.rstrip("s"))
    eval_at = f"{(BEFORE + 2) * interval_s}s"
    input_series = series(first, second, namespace)
    out = {}
    for name, metric in gates.items():
        recorded = f"gate:{name.replace('-', '_')}"
        for kind, key in (("success", "successCondition"), ("failure", "failureCondition")):
            test = {"rule_files": ["gates.yml"], "evaluation_interval": scrape_interval,
                    "tests": [{"interval": scrape_interval, "input_series": input_series, "promql_expr_test": [
                        {"expr": holds(recorded, metric[key]), "eval_time": eval_at,
                         "exp_samples": [{"labels": "{}", "value": 1}]}]}]}
            (tmp_path / "gates.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
            (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
            proc = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True,
                                  text=True)
            if proc.returncode == 0:
                out[name] = kind
        out.setdefault(name, "inconclusive")
    return out


def test_healthy_traffic_passes_every_gate(api: RunningApi, tmp_path: Path) -> None:
    first = scrape(api)
    with api.client("viewer") as client:
        for _ in range(50):
            assert client.get("/api/v1/topology").status_code == 200
            assert client.get("/api/v1/probes").status_code == 200
    second = scrape(api)
    assert verdicts(tmp_path, first, second) == {"success-rate": "success", "error-rate": "success",
                                                 "latency-p95": "success", "latency-p99": "success"}


def test_refused_requests_fail_the_success_rate_gate(api: RunningApi, tmp_path: Path) -> None:
    first = scrape(api)
    with api.client() as client:
        for _ in range(20):
            client.get("/api/v1/topology", headers={"Authorization": "Bearer forged"})
    with api.client("viewer") as client:
        for _ in range(20):
            client.get("/api/v1/topology")
    second = scrape(api)
    result = verdicts(tmp_path, first, second)
    assert result["success-rate"] == "failure" and result["error-rate"] == "success"


def test_exposition_passes_promtool_and_has_route_templates_only(api: RunningApi) -> None:
    promtool = require_tool("promtool", hint="apt-get install prometheus")
    with api.client("viewer") as client:
        client.get("/api/v1/topology/hosts/nodes/host:whatever")
        client.get("/no/such/path")
        text = client.get("/metrics").text
    assert 'route="/api/v1/topology/{view}/nodes/{node_id}"' in text
    assert 'route="unmatched"' in text and "host:whatever" not in text and "/no/such/path" not in text
    assert 'route="/metrics"' not in text and 'route="/healthz"' not in text
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_routes(api: RunningApi, path: str) -> None:
    with api.client() as client:
        response = client.get(path)
    assert response.status_code == 200
