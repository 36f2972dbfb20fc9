"""The sync engine as a platform tier (issue: migration): rendered only when enabled, valid, scraped,
alerted on, and allowed exactly its flows."""
import yaml

from components.platform import Platform, PlatformArgs
from orchestrator.toolchain import checks
from tests.support.harness import run, settings
from tests.support.netpol import Endpoint, allowed, workload_endpoints

SOURCE = "zk-old-1.example.net:2181,zk-old-2.example.net:2181"


def platform(**overrides):
    s = settings(namespace="p", zk_sync={"enabled": True, "source": SOURCE, "source_cidrs": ["203.0.113.0/24"]},
                 **overrides)
    return run(lambda: Platform("orchestrator", PlatformArgs(s, scope="tree"))).manifests


def test_disabled_by_default():
    docs = run(lambda: Platform("orchestrator", PlatformArgs(settings(namespace="p"), scope="tree"))).manifests
    assert not [d for d in docs if d["metadata"]["name"] == "zk-sync"]


def test_engine_deployment_runs_the_cli_contract_once():
    docs = platform()
    dep = one_named(docs, "Deployment", "zk-sync")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    args = c["args"]
    assert args[:2] == ["zk", "sync"] and args[args.index("--source") + 1] == SOURCE
    assert args[args.index("--target") + 1].startswith("zookeeper-0.zookeeper-headless.p.svc.cluster.local:2181")
    assert [args[i + 1] for i, a in enumerate(args) if a == "--path"] == ["/mesos", "/marathon"]
    assert "--allow-deletes" in args  # a restarted engine applies the deletes it missed (issue 15 guard)
    from orchestrator.cli import build_parser
    parsed = build_parser().parse_args(args)  # the arguments are the CLI's own, spelled as it accepts them
    assert parsed.allow_deletes and not parsed.dry_run and parsed.paths == ["/mesos", "/marathon"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9143"
    assert not c.get("env")  # no auth: no credentials


def test_engine_gets_digest_credentials_from_a_secret_when_auth_is_on():
    from orchestrator.toolchain.render import SCOPE_CONFIG, build_manifests, run_program
    config = {"orchestrator:namespace": "p", "orchestrator:security": '{"auth": true}',
              "orchestrator:zk_sync": f'{{"enabled": true, "source": "{SOURCE}"}}', SCOPE_CONFIG: "tree"}
    from components.settings import SECRET_KEYS

    secrets = {f"orchestrator:{k}": "x" for k in SECRET_KEYS}  # every secret authentication requires
    docs = build_manifests(run_program("unit", {**config, **secrets}, list(secrets))).manifests
    c = one_named(docs, "Deployment", "zk-sync")["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "ORCHESTRATOR_ZK_AUTH",
                         "valueFrom": {"secretKeyRef": {"name": "zk-sync-auth", "key": "auth"}}}]
    assert checks.reference_problems(docs) == []


def test_rendered_with_the_engine_the_platform_still_passes_the_checks():
    docs = platform()
    assert checks.reference_problems(docs) == []
    assert checks.kubernetes_schema_problems([d for d in docs if d["metadata"]["name"] == "zk-sync"]) == []
    config = yaml.safe_load(checks.prometheus_files(docs)["prometheus.yml"])
    targets = checks.discovered_targets(config, docs)["annotated-pods"]
    assert any("zk-sync" in t for t in targets), targets


def test_engine_flows():
    docs = platform()
    eps = {e.name: e for e in workload_endpoints(docs, "10.1.2.3", "100.64.0.0/24")}
    sync, zk, prom = eps["zk-sync"], eps["zookeeper"], eps["prometheus"]
    old = Endpoint("", {}, "203.0.113.7")
    assert allowed(docs, sync, zk, 2181) and allowed(docs, sync, old, 2181)
    assert allowed(docs, prom, sync, 9143)
    assert not allowed(docs, sync, Endpoint("", {}, "198.51.100.1"), 2181)  # outside source_cidrs
    assert not allowed(docs, sync, eps["marathon"], 8080) and not allowed(docs, sync, old, 22)
    assert not allowed(docs, eps["marathon"], sync, 9143)


def one_named(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1
    return found[0]
