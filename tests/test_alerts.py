"""Every alert, as rendered, evaluated by Prometheus's own engine (`promtool test rules`): it fires on
bad series and stays silent on good ones."""
import re
import subprocess

import pytest
import yaml

from orchestrator.contracts import marathon_scaler as scaler
from orchestrator.contracts import probe as probe_names
from orchestrator.toolchain import checks
from tests.support.harness import stack
from tests.support.tools import require_tool

INTERVAL = "15s"


def firing(name, series, at, labels=None):
    return {"name": name, "series": series, "at": at, "labels": labels or {}, "fires": True}


def silent(name, series, at):
    return {"name": name, "series": series, "at": at, "labels": {}, "fires": False}


def zk_up(*values):
    return [{"series": f'up{{job="zookeeper",pod="zookeeper-{i}"}}', "values": v} for i, v in enumerate(values)]


def counter(metric, state, per_step, steps=80):
    return {"series": f'{metric}{{job="mesos-master",pod="mesos-master-0",state="{state}"}}',
            "values": f"0+{per_step}x{steps}"}


TASKS = "mesos_master_task_states_exit_total"
AGENTS = 'mesos_master_slaves_state{job="mesos-master",pod="mesos-master-0",state="connected_active"}'
FRAMEWORKS = 'mesos_master_frameworks_state{job="mesos-master",pod="mesos-master-0",state="connected_active"}'
MARATHON_UP = 'up{job="marathon",pod="marathon-0"}'
SCALER_ERRORS, SCALER_LAST = scaler.ERRORS_TOTAL, scaler.LAST_CYCLE_TIMESTAMP
SCALER_BUDGET, SCALER_CIRCUIT = scaler.HEAL_BUDGET_EXHAUSTED_TOTAL, scaler.HEAL_CIRCUIT_OPEN
PROBE_CPU, PROBE_RSS = probe_names.PROBE_CPU_SECONDS, probe_names.PROBE_RSS_BYTES
EXPORTER_ERRORS = probe_names.EXPORTER_SCRAPE_ERRORS

# Prod renders a 3-server ensemble: quorum is 2.
CASES = [
    firing("ZooKeeperQuorumLost", zk_up("1x20", "0x20", "0x20"), "5m"),
    firing("ZooKeeperQuorumLost", [{"series": 'up{job="prometheus"}', "values": "1x20"}], "5m"),  # no ZK target at all
    silent("ZooKeeperQuorumLost", zk_up("1x20", "1x20", "0x20"), "5m"),
    firing("ZooKeeperServerDown", zk_up("1x40", "0x40", "1x40"), "8m", {"job": "zookeeper", "pod": "zookeeper-1"}),
    silent("ZooKeeperServerDown", zk_up("1x40", "0x12 1x28", "1x40"), "8m"),  # 3 minutes down: not yet
    firing("ZooKeeperLeaderElections",
           [{"series": 'election_time_count{job="zookeeper",pod="zookeeper-0"}', "values": "0x10 1 2 3 3x20"}], "4m",
           {"job": "zookeeper", "pod": "zookeeper-0"}),
    silent("ZooKeeperLeaderElections",
           [{"series": 'election_time_count{job="zookeeper",pod="zookeeper-0"}', "values": "1x40"}], "8m"),
    firing("ZooKeeperOutstandingRequestsHigh",
           [{"series": 'outstanding_requests{job="zookeeper",pod="zookeeper-2"}', "values": "50x40"}], "8m",
           {"job": "zookeeper", "pod": "zookeeper-2"}),
    silent("ZooKeeperOutstandingRequestsHigh",
           [{"series": 'outstanding_requests{job="zookeeper",pod="zookeeper-2"}', "values": "3x40"}], "8m"),
    firing("MesosNoLeader", [{"series": f'mesos_master_elected{{job="mesos-master",pod="mesos-master-{i}"}}',
                              "values": "0x20"} for i in range(3)], "2m"),
    firing("MesosNoLeader", [{"series": 'up{job="mesos-master"}', "values": "0x20"}], "2m"),  # nothing reports
    silent("MesosNoLeader", [{"series": f'mesos_master_elected{{job="mesos-master",pod="mesos-master-{i}"}}',
                              "values": "1x20" if i == 1 else "0x20"} for i in range(3)], "2m"),
    firing("MesosAgentRegistrationsDropped", [{"series": AGENTS, "values": "100x120 85x60"}], "40m"),
    silent("MesosAgentRegistrationsDropped", [{"series": AGENTS, "values": "100x120 95x60"}], "40m"),
    firing("MesosTaskFailureRateHigh", [counter(TASKS, "finished", 100), counter(TASKS, "failed", 10)], "18m"),
    firing("MesosTaskFailureRateHigh", [counter(TASKS, "finished", 100), counter(TASKS, "lost", 8)], "18m"),
    silent("MesosTaskFailureRateHigh", [counter(TASKS, "finished", 100), counter(TASKS, "failed", 2)], "18m"),
    firing("MarathonNoLeader", [{"series": MARATHON_UP, "values": "0x20"}, {"series": FRAMEWORKS, "values": "1x20"}],
           "3m"),
    firing("MarathonNoLeader", [{"series": MARATHON_UP, "values": "1x20"}, {"series": FRAMEWORKS, "values": "0x20"}],
           "3m"),
    silent("MarathonNoLeader", [{"series": MARATHON_UP, "values": "1x20"}, {"series": FRAMEWORKS, "values": "1x20"}],
           "3m"),
    firing("ZooKeeperSyncLagHigh", [{"series": 'orchestrator_zk_sync_lag_seconds{pod="zk-sync-0"}',
                                     "values": "0.01x4 0.8x20"}], "4m"),
    silent("ZooKeeperSyncLagHigh", [{"series": 'orchestrator_zk_sync_lag_seconds{pod="zk-sync-0"}',
                                     "values": "0.02x20 0.45x20"}], "8m"),
    # A probe that reported every 15 s for 5 minutes, then went quiet; one that keeps reporting.
    firing("ProbeOffline", [{"series": 'orchestrator_probe_last_report_timestamp_seconds{probe="p1"}',
                             "values": "0+15x20"}], "11m", {"probe": "p1"}),
    silent("ProbeOffline", [{"series": 'orchestrator_probe_last_report_timestamp_seconds{probe="p1"}',
                             "values": "0+15x60"}], "11m"),
    # Still firing hours later although no API replica exports the probe any more (API restarted: the series
    # is gone), and from two replicas (pod label) as one alert per probe.
    firing("ProbeOffline", [{"series": f'orchestrator_probe_last_report_timestamp_seconds{{pod="api-{i}",probe="p1"}}',
                             "values": "0+15x20"} for i in range(2)], "3h", {"probe": "p1"}),
    # A probe silent for a while that reports again: resolved.
    silent("ProbeOffline", [{"series": 'orchestrator_probe_last_report_timestamp_seconds{probe="p1"}',
                             "values": "0+15x20 _x40 900+15x40"}], "30m"),
    # The Marathon scaler (components/marathon_scaler.py): a failing loop, a stuck loop, heal guards.
    firing("MarathonScalerErrors", [{"series": f'{SCALER_ERRORS}{{loop="autoscale",kind="MarathonUnreachable"}}',
                                     "values": "0+1x40"}], "10m", {"loop": "autoscale"}),
    silent("MarathonScalerErrors", [{"series": f'{SCALER_ERRORS}{{loop="autoscale",kind="MarathonUnreachable"}}',
                                     "values": "0x20 1x20"}], "10m"),
    firing("MarathonScalerStalled", [{"series": f'{SCALER_LAST}{{loop="heal"}}', "values": "0+15x20 300x60"}],
           "20m", {"loop": "heal"}),
    silent("MarathonScalerStalled", [{"series": f'{SCALER_LAST}{{loop="heal"}}', "values": "0+15x80"}], "20m"),
    firing("MarathonHealBudgetExhausted", [{"series": f'{SCALER_BUDGET}{{scope="cluster"}}', "values": "0x10 1x30"}],
           "8m", {"scope": "cluster"}),
    silent("MarathonHealBudgetExhausted", [{"series": f'{SCALER_BUDGET}{{scope="cluster"}}', "values": "0x40"}],
           "8m"),
    # Our probes and exporters (components/exporters.py): a probe over its budget, an unreadable target.
    firing("ProbeCostHigh", [{"series": f'{PROBE_CPU}{{namespace="ns-agents",pod="probe-a"}}', "values": "0+9x120"}],
           "25m", {"namespace": "ns-agents", "pod": "probe-a"}),  # 9 s of CPU per 15 s: 60 %
    firing("ProbeCostHigh", [{"series": f'{PROBE_RSS}{{namespace="ns-agents",pod="probe-a"}}', "values": "2e8x120"}],
           "25m", {"namespace": "ns-agents", "pod": "probe-a"}),
    silent("ProbeCostHigh", [{"series": f'{PROBE_CPU}{{namespace="ns-agents",pod="probe-a"}}', "values": "0+0.3x120"},
                             {"series": f'{PROBE_RSS}{{namespace="ns-agents",pod="probe-a"}}', "values": "7e7x120"}],
           "25m"),  # 2 % and 70 MB: the measured cost
    firing("ExporterScrapeErrors", [{"series": f'{EXPORTER_ERRORS}{{exporter="mesos",target="m-0:5050"}}',
                                     "values": "0+1x60"}], "12m", {"exporter": "mesos", "target": "m-0:5050"}),
    silent("ExporterScrapeErrors", [{"series": f'{EXPORTER_ERRORS}{{exporter="mesos",target="m-0:5050"}}',
                                     "values": "0x20 1x40"}], "12m"),  # one failed scrape
    firing("MarathonHealCircuitOpen", [{"series": SCALER_CIRCUIT, "values": "0x4 1x20"}], "5m"),
    silent("MarathonHealCircuitOpen", [{"series": SCALER_CIRCUIT, "values": "0x4 1x4 0x20"}], "5m"),  # brief blip
]


def rendered_rules():
    files = checks.prometheus_files(stack("prod").manifests)
    return files["alerts.yml"], yaml.safe_load(files["alerts.yml"])


def alert_defs(rules):
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


def expand(template, labels):
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)


def unit_tests(rules):
    defs = alert_defs(rules)
    tests = []
    for case in CASES:
        rule = defs[case["name"]]
        expected = []
        if case["fires"]:
            labels = {**case["labels"], **rule["labels"]}
            expected = [{"exp_labels": labels,
                         "exp_annotations": {k: expand(v, labels) for k, v in rule["annotations"].items()}}]
        tests.append({"interval": INTERVAL, "input_series": case["series"],
                      "alert_rule_test": [{"eval_time": case["at"], "alertname": case["name"],
                                           "exp_alerts": expected}]})
    return {"rule_files": ["alerts.yml"], "evaluation_interval": INTERVAL, "tests": tests}


def promtool_test(tmp_path, rules_text, rules):
    (tmp_path / "alerts.yml").write_text(rules_text)
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(unit_tests(rules), sort_keys=False))
    return subprocess.run([require_tool("promtool", hint="apt-get install prometheus"), "test", "rules",
                           "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True)


def test_every_alert_has_a_firing_and_a_silent_case():
    _, rules = rendered_rules()
    names = set(alert_defs(rules))
    assert names == {c["name"] for c in CASES if c["fires"]} == {c["name"] for c in CASES if not c["fires"]}
    assert {"ZooKeeperQuorumLost", "MesosNoLeader", "MesosAgentRegistrationsDropped", "MesosTaskFailureRateHigh",
            "MarathonNoLeader", "ZooKeeperSyncLagHigh", "ProbeOffline", "ZooKeeperOutstandingRequestsHigh"} <= names


def test_alerts_fire_on_bad_series_and_stay_silent_on_good(tmp_path):
    text, rules = rendered_rules()
    proc = promtool_test(tmp_path, text, rules)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


@pytest.mark.parametrize("alert,field,before,after", [
    ("MesosTaskFailureRateHigh", "expr", "> 0.05", "> 0.5"),       # threshold loosened tenfold
    ("MesosAgentRegistrationsDropped", "expr", "< 0.9 *", "< 0.5 *"),
    ("MesosNoLeader", "for", "30s", "5m"),                          # leader alert delayed
    ("ZooKeeperSyncLagHigh", "expr", "> 0.5", "> 5"),
    ("ZooKeeperQuorumLost", "expr", "< 2", "< 1"),                  # quorum miscounted
    ("MarathonNoLeader", "expr", "state=\"connected_active\"", "state=\"connected_inactive\""),
])
def test_a_broken_rule_is_caught(tmp_path, alert, field, before, after):
    _, rules = rendered_rules()
    rule = alert_defs(rules)[alert]
    assert before in rule[field]
    rule[field] = rule[field].replace(before, after)
    proc = promtool_test(tmp_path, yaml.safe_dump(rules, sort_keys=False), rules)
    assert proc.returncode != 0, "promtool passed a rule set with a broken rule"
    assert alert in proc.stdout + proc.stderr
