"""The canary's analysis gates evaluated for real: each rendered AnalysisTemplate query, with its
arguments substituted as Argo Rollouts does, becomes a recording rule that Prometheus's own engine
(`promtool test rules`) evaluates over synthetic series of a canary pod and a stable pod. The rendered
successCondition / failureCondition are then checked on the recorded value, also in PromQL.

A healthy canary passes every gate (while the stable pod next to it is broken: the queries see only the
canary); a bad one fails the right gates; no traffic is Inconclusive (the rollout pauses for a human).
The last tests break a threshold, a query and the selector, and show the gates then give wrong answers.
"""
import copy
import re
import subprocess

import pytest
import yaml

from orchestrator.contracts.service_metrics import LATENCY_BUCKETS_SECONDS, REQUEST_DURATION, REQUESTS_TOTAL
from tests.support.harness import objects, stack
from tests.support.tools import require_tool

STACKS = ["dev", "prod"]
ROLLOUT = "orchestrator-service"
CANARY_HASH = "7c9d5b8f46"
CANARY_POD = f"{ROLLOUT}-{CANARY_HASH}-x2x7q"
STABLE_POD = f"{ROLLOUT}-5f6d7c8b9-q8wzl"
STEPS = 40          # samples per series, one per scrape interval: 20 minutes at 30 s
EVAL_AT = "15m"
_CONDITION = re.compile(r"^len\(result\) == 1 && result\[0\] (>=|<=|<|>) (\d+(?:\.\d+)?)$")

# Per-scrape increments of a pod's counters. codes: status code → requests; latency: bucket upper bound
# (seconds) the requests fall in → requests.
HEALTHY = {"codes": {"200": 190, "304": 5, "404": 3, "500": 2}, "latency": {0.1: 150, 0.25: 40, 0.5: 8, 1.0: 2}}
BROKEN = {"codes": {"200": 100, "500": 100}, "latency": {5.0: 150, 10.0: 50}}
FAST = HEALTHY["latency"]

SCENARIOS = {
    # A healthy canary passes every gate, even though the stable pod beside it is broken.
    "healthy": ({"canary": HEALTHY, "stable": BROKEN},
                {"success-rate": "success", "error-rate": "success", "latency-p95": "success",
                 "latency-p99": "success"}),
    "high-error-rate": ({"canary": {"codes": {"200": 180, "500": 20}, "latency": FAST}, "stable": HEALTHY},
                        {"success-rate": "failure", "error-rate": "failure", "latency-p95": "success",
                         "latency-p99": "success"}),
    # 10 % of requests between 1 s and 2 s: p95 ≈ 1.5 s fails, p99 ≈ 1.9 s still passes.
    "slow-p95": ({"canary": {"codes": {"200": 200}, "latency": {0.25: 180, 2.0: 20}}, "stable": HEALTHY},
                 {"success-rate": "success", "error-rate": "success", "latency-p95": "failure",
                  "latency-p99": "success"}),
    # 2 % of requests between 2 s and 5 s: p95 stays fast, p99 ≈ 3.5 s fails.
    "slow-p99": ({"canary": {"codes": {"200": 200}, "latency": {0.25: 196, 5.0: 4}}, "stable": HEALTHY},
                 {"success-rate": "success", "error-rate": "success", "latency-p95": "success",
                  "latency-p99": "failure"}),
    # Broken routes: 15 % 404s fail the success rate, not the (5xx) error rate.
    "client-errors": ({"canary": {"codes": {"200": 170, "404": 30}, "latency": FAST}, "stable": HEALTHY},
                      {"success-rate": "failure", "error-rate": "success", "latency-p95": "success",
                       "latency-p99": "success"}),
    # Nothing but 503s: no 2xx series exists at all; the success rate is 0, a failure, not "no data".
    "only-server-errors": ({"canary": {"codes": {"503": 200}, "latency": FAST}, "stable": HEALTHY},
                           {"success-rate": "failure", "error-rate": "failure", "latency-p95": "success",
                            "latency-p99": "success"}),
    # Scraped but idle (0/0 = NaN), or not scraped yet (no series): no evidence either way.
    "idle": ({"canary": {"codes": {"200": 0}, "latency": {0.1: 0}}, "stable": HEALTHY},
             dict.fromkeys(["success-rate", "error-rate", "latency-p95", "latency-p99"], "inconclusive")),
    "not-scraped-yet": ({"stable": HEALTHY},
                        dict.fromkeys(["success-rate", "error-rate", "latency-p95", "latency-p99"], "inconclusive")),
}


def pod_series(namespace, pod, traffic):
    labels = f'job="annotated-pods",component="orchestrator-service",namespace="{namespace}",pod="{pod}"'
    out = [{"series": f'{REQUESTS_TOTAL}{{{labels},method="GET",route="/v1/apps",code="{code}"}}',
            "values": f"0+{n}x{STEPS}"} for code, n in traffic["codes"].items()]
    for le in [*LATENCY_BUCKETS_SECONDS, "+Inf"]:
        cumulative = sum(n for bound, n in traffic["latency"].items() if le == "+Inf" or bound <= le)
        out.append({"series": f'{REQUEST_DURATION}_bucket{{{labels},method="GET",route="/v1/apps",le="{le}"}}',
                    "values": f"0+{cumulative}x{STEPS}"})
    return out


def substitute(text, args):
    """What Argo Rollouts does with `{{args.name}}` before querying."""
    result = re.sub(r"\{\{\s*args\.([\w.-]+)\s*\}\}", lambda m: args[m.group(1)], text)
    assert "{{" not in result, result
    return result


def holds(recorded, condition):
    """The rendered Argo condition as PromQL: 1 when it holds for the recorded result, else 0."""
    match = _CONDITION.match(condition)
    assert match, f"condition {condition!r} is not of the form this test evaluates: extend the test"
    op, bound = match.groups()
    return f"((count({recorded}) == 1) and (count({recorded} {op} {bound}) == 1)) or vector(0)"


def gates_of(docs):
    gates = {}
    for t in docs:
        (metric,) = t["spec"]["metrics"]
        gates[metric["name"]] = metric
    return gates


def evaluate(tmp_path, templates, namespace, scrape_interval, scenario):
    """Run promtool on the gates for a scenario; returns (passed, promtool's report)."""
    promtool = require_tool("promtool", hint="apt-get install prometheus")
    pods, verdicts = SCENARIOS[scenario]
    args = {"namespace": namespace, "rollout": ROLLOUT, "canary-hash": CANARY_HASH}
    gates = gates_of(templates)
    assert set(gates) == set(verdicts), "every rendered gate needs an expected verdict"
    rules = {"groups": [{"name": "canary-gates", "interval": scrape_interval, "rules": [
        {"record": f"gate:{name.replace('-', '_')}", "expr": substitute(m["provider"]["prometheus"]["query"], args)}
        for name, m in gates.items()]}]}
    series = [s for role, pod in (("canary", CANARY_POD), ("stable", STABLE_POD)) if role in pods
              for s in pod_series(namespace, pod, pods[role])]
    tests = []
    for name, metric in gates.items():
        recorded = f"gate:{name.replace('-', '_')}"
        verdict = verdicts[name]
        for kind, key in (("success", "successCondition"), ("failure", "failureCondition")):
            tests.append({"expr": holds(recorded, metric[key]), "eval_time": EVAL_AT,
                          "exp_samples": [{"labels": "{}", "value": 1 if verdict == kind else 0}]})
    (tmp_path / "gates.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["gates.yml"], "evaluation_interval": scrape_interval,
        "tests": [{"interval": scrape_interval, "input_series": series, "promql_expr_test": tests}]},
        sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr, len(tests)


def rendered(name):
    result = stack(name)
    templates = copy.deepcopy(objects(result, "AnalysisTemplate"))
    scrape = yaml.safe_load(next(m for m in result.manifests if m["kind"] == "ConfigMap"
                                 and "prometheus.yml" in m["data"])["data"]["prometheus.yml"])["global"]["scrape_interval"]
    return templates, result.stack_outputs["namespace"], scrape


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", STACKS)
def test_gates_under_prometheus(tmp_path, name, scenario):
    templates, namespace, scrape = rendered(name)
    assert len(templates) == 4
    passed, report, checked = evaluate(tmp_path, templates, namespace, scrape, scenario)
    assert checked == 8  # success and failure condition of each of the four gates
    assert passed, report


# --- the gates are sensitive: break them and the verdicts go wrong ------------------------------------
def _template(templates, gate):
    return next(t for t in templates if t["spec"]["metrics"][0]["name"] == gate)["spec"]["metrics"][0]


def _breaks(tmp_path, mutate, scenario):
    templates, namespace, scrape = rendered("prod")
    ok, _, _ = evaluate(tmp_path, templates, namespace, scrape, scenario)
    assert ok, "the unbroken gates must pass this scenario"
    mutate(templates)
    ok, report, _ = evaluate(tmp_path, templates, namespace, scrape, scenario)
    return not ok, report


def test_a_lowered_threshold_lets_a_bad_canary_through(tmp_path):
    def lower(templates):
        m = _template(templates, "success-rate")
        m["successCondition"] = m["successCondition"].replace(">= 0.95", ">= 0.85")
        m["failureCondition"] = m["failureCondition"].replace("< 0.95", "< 0.85")
    broke, report = _breaks(tmp_path, lower, "high-error-rate")
    assert broke and "gate:success_rate" in report, report


def test_a_query_without_the_zero_default_turns_a_failure_into_no_data(tmp_path):
    def drop_default(templates):
        m = _template(templates, "success-rate")
        m["provider"]["prometheus"]["query"] = m["provider"]["prometheus"]["query"].replace(" or vector(0)", "")
    broke, report = _breaks(tmp_path, drop_default, "only-server-errors")
    assert broke and "gate:success_rate" in report, report


def test_a_selector_that_sees_the_stable_pods_fails_a_healthy_canary(tmp_path):
    def unscoped(templates):
        for t in templates:
            q = t["spec"]["metrics"][0]["provider"]["prometheus"]
            q["query"] = q["query"].replace("{{args.rollout}}-{{args.canary-hash}}-.+", ".+")
    broke, report = _breaks(tmp_path, unscoped, "healthy")
    assert broke, report


def test_a_p99_gate_computing_p95_misses_slow_tails(tmp_path):
    def wrong_quantile(templates):
        q = _template(templates, "latency-p99")["provider"]["prometheus"]
        q["query"] = q["query"].replace("histogram_quantile(0.99,", "histogram_quantile(0.95,")
    broke, report = _breaks(tmp_path, wrong_quantile, "slow-p99")
    assert broke and "gate:latency_p99" in report, report
