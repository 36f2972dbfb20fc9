"""Scheduled ZooKeeper backups (issue 14): the zk-backup tier is a CronJob running `orchestrator zk snapshot`,
S3 credentials through the credentials tier. The restore drill runs the rendered CronJob's own command line
against a real ZooKeeper and a moto S3, restores into a second real ensemble and verifies both trees equal."""
from __future__ import annotations

import pytest
from kazoo.client import KazooClient

from components.platform import Platform, PlatformArgs
from components.zk_backup import snapshot_args
from orchestrator.cli import main
from tests.support.harness import one, run, settings
from tests.support.netpol import Endpoint, allowed, workload_endpoints
from tests.support.s3 import mocked_s3
from tests.support.zk_ensemble import LocalEnsemble

BUCKET = "platform-backups"
BACKUP = {"enabled": True, "s3": f"s3://{BUCKET}/zk/dev", "schedule": "*/30 * * * *", "retention_hours": 48}


def render(**overrides):
    s = settings(**{"namespace": "p", "zk_backup": BACKUP, **overrides})
    return s, run(lambda: Platform("orchestrator", PlatformArgs(s)))


def test_the_cronjob_runs_the_snapshot_command_on_schedule():
    s, result = render()
    cron = one(result, "CronJob", "zk-backup")
    assert cron["spec"]["schedule"] == "*/30 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid", "never two snapshots at once"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["orchestrator"]
    connect = container["args"][container["args"].index("--source") + 1]
    assert container["args"] == snapshot_args(s.zk_backup, connect)
    assert connect.startswith("zookeeper-0.zookeeper-headless.p.svc.cluster.local:2181")
    assert {"--s3", f"s3://{BUCKET}/zk/dev", "--retention-hours", "48", "/mesos", "/marathon"} <= set(container["args"])
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_it_reaches_zookeeper_and_s3_only():
    _, result = render(zk_backup={**BACKUP, "s3_cidrs": ["52.216.0.0/15"]})
    docs = result.manifests
    eps = {e.name: e for e in workload_endpoints(docs, "10.1.2.3", "100.64.0.0/24")}
    backup = eps["zk-backup"]
    assert allowed(docs, backup, eps["zookeeper"], 2181)
    assert allowed(docs, backup, Endpoint("", {}, "52.217.1.1"), 443)
    assert not allowed(docs, backup, Endpoint("", {}, "8.8.8.8"), 443)
    assert not allowed(docs, backup, eps["marathon"], 8080)


def test_s3_keys_come_from_the_credentials_tier_or_the_pods_identity():
    from components.settings import BACKUP_S3_KEYS, SECRET_KEYS
    from orchestrator.toolchain.render import REDACTED, SCOPE_CONFIG, build_manifests, load_stack_config, run_program

    config, secret_keys, _ = load_stack_config("prod")
    for key in (*SECRET_KEYS, *BACKUP_S3_KEYS):
        config[f"orchestrator:{key}"] = f"value-of-{key}"
    secret_keys = [*secret_keys, *(f"orchestrator:{k}" for k in BACKUP_S3_KEYS)]
    config["orchestrator:zk_backup"] = '{"enabled": true, "s3": "s3://prod-backups/zk"}'
    config[SCOPE_CONFIG] = "tree"
    result = build_manifests(run_program("prod", config, secret_keys))
    secret = one(result, "Secret", "zk-backup-s3")
    assert set(secret["stringData"]) == {"credentials"} and set(secret["stringData"].values()) == {REDACTED}
    raw = next(r for r in result.registrations if r.name == "zk-backup-s3").inputs["stringData"]
    assert "aws_secret_access_key = value-of-zk_backup_secret_access_key" in str(raw)
    pod = one(result, "CronJob", "zk-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "s3")
    assert volume["secret"]["secretName"] == "zk-backup-s3"
    container = pod["containers"][0]
    home = next(e["value"] for e in container["env"] if e["name"] == "HOME")
    assert {"name": "s3", "mountPath": f"{home}/.aws", "readOnly": True} in container["volumeMounts"]
    assert not [e for e in container["env"] if "valueFrom" in e], "no secret in the environment"
    assert "value-of-zk_backup_secret_access_key" not in str(result.manifests)
    # Without keys: the pod's identity (an IAM role on the ServiceAccount), no Secret.
    _, plain = render(zk_backup={**BACKUP, "service_account_annotations": {"eks.amazonaws.com/role-arn": "arn:x"}})
    account = one(plain, "ServiceAccount", "zk-backup")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:x"}
    assert not [m for m in plain.manifests if m["kind"] == "Secret"]


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, BUCKET)


def test_restore_drill_from_the_scheduled_snapshot(tmp_path, s3):
    s, result = render()
    args = one(result, "CronJob", "zk-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    with LocalEnsemble(tmp_path / "live", size=1) as live, LocalEnsemble(tmp_path / "spare", size=1) as spare:
        client = KazooClient(hosts=live.connect_string, timeout=10.0)
        client.start(timeout=30)
        try:
            for i in range(50):
                client.create(f"/marathon/apps/app-{i}", f"definition {i}".encode(), makepath=True)
            client.create("/mesos/registry", b"\x00\x01registry", makepath=True)
        finally:
            client.stop()
            client.close()
        # The CronJob's command line, pointed at the loopback ensemble instead of the pod DNS names.
        scheduled = list(args)
        scheduled[scheduled.index("--source") + 1] = live.connect_string
        assert main(scheduled) == 0
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix="zk/dev")["KeyCount"] == 1
        paths = [a for p, a in zip(args, args[1:], strict=False) if p == "--path"]
        restore = ["zk", "restore", "--target", spare.connect_string, "--s3", s.zk_backup.s3]
        for path in paths:
            restore += ["--path", path]
        assert main(restore) == 0
        verify = ["zk", "verify", "--source", live.connect_string, "--target", spare.connect_string]
        for path in paths:
            verify += ["--path", path]
        assert main(verify) == 0, "the restored trees differ from the live ones"
