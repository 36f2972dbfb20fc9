"""The orchestrator service as an Argo Rollout: selectors that reach its pods, analysis steps whose
templates and arguments exist, steps and thresholds from settings, and every Argo object validated by
the independent npm models (@kubernetes-models/argo-rollouts, @kubernetes-models/argo-cd)."""
import copy
import re

import pytest

from components.k8s import PlatformContext
from components.orchestrator_service import (
    CANARY_SELECTOR,
    OrchestratorService,
    OrchestratorServiceArgs,
    analysis_queries,
    rate_window,
)
from components.settings import SettingsError, settings_from_config
from orchestrator.contracts.service_metrics import LATENCY_BUCKETS_SECONDS
from orchestrator.toolchain import argo_validate, checks
from tests.support.harness import objects, one, resolve, settings, stack
from tests.support.tools import in_ci, require_tool

STACKS = ["dev", "prod"]
PROM = "http://prometheus.ns.svc.cluster.local:9090"


def require_argo_validator():
    require_tool("node", hint="apt-get install nodejs")
    reason = argo_validate.node_problem()
    if reason:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: missing tools fail, they never skip)")
        pytest.skip(reason)


def build(**overrides):
    s = settings(namespace="ns", **overrides)

    def program():
        svc = OrchestratorService("orchestrator-service", OrchestratorServiceArgs(
            PlatformContext.of(s), s.service, PROM, s.monitoring.scrape_interval, s.security.rollouts_namespace))
        return {"url": svc.url, "canary_url": svc.canary_url, "rollout": svc.rollout_name}
    return s, *resolve(program)


def rollout_of(result):
    return one(result, "Rollout", "orchestrator-service")


# --- the component ---------------------------------------------------------------------------------
def test_component_objects_and_outputs():
    _, result, out = build()
    kinds = sorted(m["kind"] for m in result.manifests)
    assert kinds == ["AnalysisTemplate"] * 4 + ["PodDisruptionBudget", "Rollout", "Service", "Service", "Service"]
    assert out == {"url": "http://orchestrator-service.ns.svc.cluster.local:8080",
                   "canary_url": "http://orchestrator-service-canary.ns.svc.cluster.local:8080",
                   "rollout": "orchestrator-service"}
    comp = [r for r in result.registrations if not r.custom]
    assert [r.type for r in comp] == ["orchestrator:orchestrator_service:OrchestratorService"]
    assert comp[0].urn in result.outputs_registered
    assert all(r.parent == comp[0].urn for r in result.registrations if r.custom)


def test_services_select_the_rollout_pods_and_differ():
    _, result, _ = build()
    rollout = rollout_of(result)
    canary = rollout["spec"]["strategy"]["canary"]
    pod_labels = rollout["spec"]["template"]["metadata"]["labels"]
    assert rollout["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    services = {s["metadata"]["name"]: s for s in objects(result, "Service")}
    # The headless Service (the probes') is not Argo Rollouts': it selects stable and canary pods alike.
    assert set(services) - {"orchestrator-service-headless"} == {canary["stableService"], canary["canaryService"]} \
        == {"orchestrator-service", "orchestrator-service-canary"}
    for svc in services.values():
        assert svc["spec"]["selector"] and svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert argo_validate.reference_problems(result.manifests) == []


def test_pod_runs_restricted_and_is_scraped_by_the_annotated_pods_job():
    _, result, _ = build()
    tmpl = rollout_of(result)["spec"]["template"]
    c = tmpl["spec"]["containers"][0]
    sc = c["securityContext"]
    assert sc == {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert tmpl["spec"]["securityContext"]["runAsUser"] != 0
    assert tmpl["spec"]["automountServiceAccountToken"] is False
    assert c["image"] == "ghcr.io/orchestrator/orchestrator-services:0.1.0"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert tmpl["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                                               "prometheus.io/path": "/metrics"}


@pytest.mark.parametrize("name", STACKS)
def test_rendered_stack_scrapes_the_service_pods(name):
    import yaml
    result = stack(name)
    files = checks.prometheus_files(result.manifests)
    targets = checks.discovered_targets(yaml.safe_load(files["prometheus.yml"]), result.manifests)
    assert [t for t in targets["annotated-pods"] if t.startswith("Rollout ")] == [
        f"Rollout {result.stack_outputs['namespace']}/orchestrator-service:service:http"]


def test_default_steps_are_the_seeds():
    _, result, _ = build()
    steps = rollout_of(result)["spec"]["strategy"]["canary"]["steps"]
    compact = [f"{s['setWeight']}%" if "setWeight" in s else
               f"pause {s['pause']['duration']}" if "pause" in s else "analysis" for s in steps]
    assert compact == ["10%", "pause 5m", "analysis", "25%", "pause 5m", "50%", "pause 10m", "analysis",
                       "75%", "pause 5m", "100%"]


def test_steps_come_from_settings():
    _, result, _ = build(service={"canary": {"steps": ["20%", "pause", "analysis", "60%", "pause 1h"]}})
    steps = rollout_of(result)["spec"]["strategy"]["canary"]["steps"]
    assert steps[0] == {"setWeight": 20} and steps[1] == {"pause": {}} and "analysis" in steps[2]
    assert steps[3:] == [{"setWeight": 60}, {"pause": {"duration": "1h"}}]


def test_analysis_steps_reference_every_gate_with_declared_arguments():
    _, result, _ = build()
    rollout = rollout_of(result)
    templates = {t["metadata"]["name"]: t for t in objects(result, "AnalysisTemplate")}
    analyses = [s["analysis"] for s in rollout["spec"]["strategy"]["canary"]["steps"] if "analysis" in s]
    assert len(analyses) == 2
    for analysis in analyses:
        assert sorted(t["templateName"] for t in analysis["templates"]) == sorted(templates)
        passed = {a["name"]: a for a in analysis["args"]}
        assert passed["canary-hash"] == {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
        assert passed["rollout"]["value"] == rollout["metadata"]["name"]
        assert passed["namespace"]["value"] == rollout["metadata"]["namespace"]
        for template in templates.values():
            declared = {a["name"] for a in template["spec"]["args"]}
            assert declared == set(passed)
            used = set(re.findall(r"\{\{args\.([\w-]+)\}\}", str(template["spec"]["metrics"])))
            assert used == declared


def test_gates_thresholds_and_cadence():
    s, result, _ = build()
    metrics = {t["spec"]["metrics"][0]["name"]: t["spec"]["metrics"][0] for t in objects(result, "AnalysisTemplate")}
    assert {n: m["successCondition"] for n, m in metrics.items()} == {
        "success-rate": "len(result) == 1 && result[0] >= 0.95",
        "error-rate": "len(result) == 1 && result[0] <= 0.05",
        "latency-p95": "len(result) == 1 && result[0] <= 1",
        "latency-p99": "len(result) == 1 && result[0] <= 2"}
    for m in metrics.values():
        assert (m["interval"], m["count"], m["failureLimit"]) == ("1m", 5, 1)
        assert m["provider"]["prometheus"]["address"] == PROM
        assert CANARY_SELECTOR in m["provider"]["prometheus"]["query"]
        assert "[2m]" in m["provider"]["prometheus"]["query"]  # 4 scrapes of 30 s
    assert rate_window(s.service.canary, s.monitoring.scrape_interval) == "2m"
    # The latency gates sit on bucket bounds of the contract's histogram: decided exactly.
    for gate in analysis_queries(s.service.canary, s.monitoring.scrape_interval):
        if gate.unit == "seconds":
            assert gate.bound in LATENCY_BUCKETS_SECONDS


def test_thresholds_come_from_settings():
    _, result, _ = build(service={"canary": {"success_rate_min": 0.99, "p99_latency_max_ms": 5000}})
    conditions = {t["spec"]["metrics"][0]["name"]: t["spec"]["metrics"][0]["successCondition"]
                  for t in objects(result, "AnalysisTemplate")}
    assert conditions["success-rate"].endswith(">= 0.99")
    assert conditions["latency-p99"].endswith("<= 5")


def test_rollout_is_not_awaited_and_aborts_on_a_stuck_canary():
    _, result, _ = build()
    rollout = rollout_of(result)
    assert rollout["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert rollout["spec"]["progressDeadlineAbort"] is True


@pytest.mark.parametrize("config, key", [
    ({"orchestrator:service": '{"canary": {"steps": ["10%", "pause 5m"]}}'}, "orchestrator:service.canary"),
    ({"orchestrator:service": '{"canary": {"steps": ["50%", "20%", "analysis"]}}'}, "orchestrator:service.canary"),
    ({"orchestrator:service": '{"canary": {"steps": ["10%", "wait", "analysis"]}}'},
     "orchestrator:service.canary.steps[1]"),
    ({"orchestrator:service": '{"canary": {"analysis_interval": "30s"}}'},
     "orchestrator:service.canary.analysis_interval"),
    ({"orchestrator:service": '{"canary": {"failure_limit": 5}}'}, "orchestrator:service.canary"),
    ({"orchestrator:service": '{"image": "ghcr.io/orchestrator/orchestrator-services:latest"}'},
     "orchestrator:service.image"),
])
def test_bad_canary_settings_name_the_key(config, key):
    with pytest.raises(SettingsError) as err:
        settings_from_config(config, "Pulumi.x.yaml")
    assert f"Pulumi.x.yaml: {key}" in str(err.value)


# --- independent validation of every Argo object ------------------------------------------------------
@pytest.mark.parametrize("name", STACKS)
def test_every_argo_object_passes_the_npm_models(name):
    require_argo_validator()
    docs = [d for d in stack(name).manifests if argo_validate.is_argo(d)]
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == ["AnalysisTemplate", "AppProject", "Application", "Rollout"]
    assert len(docs) >= 4 + 2 + 1 + 6 + 1  # templates, projects, root, children, rollout
    assert argo_validate.schema_problems(docs) == []
    assert argo_validate.reference_problems(stack(name).manifests) == []


def test_npm_models_catch_wrong_types_missing_fields_and_unknown_keys():
    require_argo_validator()
    docs = copy.deepcopy([d for d in stack("dev").manifests if argo_validate.is_argo(d)])
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    rollout["spec"]["replicas"] = "two"
    rollout["spec"]["strategy"]["canary"]["canarySerivce"] = "typo"
    rollout["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    template = next(d for d in docs if d["kind"] == "AnalysisTemplate")
    del template["spec"]["metrics"][0]["name"]
    app = next(d for d in docs if d["kind"] == "Application")
    app["spec"]["syncPolicy"]["automated"]["selfHeall"] = True
    project = next(d for d in docs if d["kind"] == "AppProject")
    project["spec"]["sourceRepos"] = "not-a-list"
    problems = argo_validate.schema_problems(docs)
    expected = [("Rollout", "/spec/replicas", "must be integer"),
                ("Rollout", "/spec/strategy/canary/canarySerivce", "unknown field"),
                ("Rollout", "/spec/template/spec/containers/0/imagePullPolicyy", "unknown field"),
                ("AnalysisTemplate", "/spec/metrics/0", "required property"),
                ("Application", "/spec/syncPolicy/automated/selfHeall", "unknown field"),
                ("AppProject", "/spec/sourceRepos", "must be array")]
    for kind, path, message in expected:
        assert any(p.startswith(kind) and f": {path}: " in p and message in p for p in problems), (kind, problems)
    assert len(problems) == len(expected), problems


def test_reference_checks_catch_broken_selectors_templates_and_arguments():
    docs = copy.deepcopy(stack("dev").manifests)
    assert argo_validate.reference_problems(docs) == []
    canary = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "orchestrator-service-canary")
    canary["spec"]["selector"]["app.kubernetes.io/component"] = "orchestrator"  # selects nothing
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    first = next(s["analysis"] for s in steps if "analysis" in s)
    first["templates"][0]["templateName"] = "orchestrator-service-success-ratio"
    first["args"] = [a for a in first["args"] if a["name"] != "canary-hash"]
    template = next(d for d in docs if d["kind"] == "AnalysisTemplate")
    template["spec"]["metrics"][0]["provider"]["prometheus"]["query"] += ' + on() {{args.missing}}'
    problems = argo_validate.reference_problems(docs)
    assert any("canaryService orchestrator-service-canary does not select" in p for p in problems), problems
    assert any("AnalysisTemplate orchestrator-service-success-ratio is not rendered" in p for p in problems)
    assert sum("needs argument canary-hash, not passed" in p for p in problems) == 3  # the 3 other templates
    assert any("uses {{args.missing}} but does not declare it" in p for p in problems)
    assert len(problems) == 6, problems
    # The generic reference check sees the Service too.
    assert any("orchestrator-service-canary: selector matches no rendered pods" in p
               for p in checks.reference_problems(docs))


# --- the metric contract, as the service will export it ------------------------------------------------
def exposition():
    from prometheus_client import generate_latest

    from orchestrator.contracts.service_metrics import ServiceMetrics
    m = ServiceMetrics()
    m.observe("get", "/v1/apps/{id}", 200, 0.04)
    m.observe("POST", "/v1/apps", 503, 1.7)
    m.observe("GET", "/healthz", 200, 0.001)  # probes are not traffic
    return generate_latest(m.registry).decode()


def test_exported_metrics_are_exactly_what_the_gate_queries_select():
    from prometheus_client.parser import text_string_to_metric_families
    samples = [s for f in text_string_to_metric_families(exposition()) for s in f.samples]
    by_name = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s.labels)
    requests = by_name["orchestrator_http_requests_total"]
    assert sorted(r["code"] for r in requests) == ["200", "503"]
    assert all(set(r) == {"method", "route", "code"} for r in requests)
    assert {r["route"] for r in requests} == {"/v1/apps/{id}", "/v1/apps"}  # templates; no /healthz
    bounds = {float(b["le"]) for b in by_name["orchestrator_http_request_duration_seconds_bucket"]}
    assert bounds == {*LATENCY_BUCKETS_SECONDS, float("inf")}
    s = settings()
    checked = 0
    for gate in analysis_queries(s.service.canary, s.monitoring.scrape_interval):
        for metric, matchers in re.findall(r"([a-z_:]+)\{([^}]*)\}", gate.query):
            assert metric in by_name, f"{gate.name} queries {metric}, which the service does not export"
            used = set(re.findall(r"(\w+)\s*[=!]~?", matchers)) - {"namespace", "pod"}  # added by the scrape
            assert used <= set(by_name[metric][0]), (gate.name, used)
            checked += 1
        if gate.unit == "seconds":
            assert gate.bound in bounds
    assert checked == 6


def test_exposition_passes_promtool_lint():
    promtool = require_tool("promtool", hint="apt-get install prometheus")
    import subprocess
    proc = subprocess.run([promtool, "check", "metrics"], input=exposition(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
