"""Scheduled ZooKeeper backups: a CronJob running `orchestrator zk snapshot` (the services image) that writes
the configured subtrees as one object to S3 (docs/backups.md). The snapshot command itself sets, or with
`check_lifecycle_only` checks, the bucket's expiry for the prefix; restores are `orchestrator zk restore`.
S3 credentials come from the credentials tier's Secret (static keys, mounted as the AWS SDK's credentials
file) or from the pod's identity (an IAM role bound to the ServiceAccount), never from the pod spec."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components import security as sec
from components.settings import ZkBackupSettings
from components.zookeeper import NO_TLS, ClientTls
from orchestrator.contracts import tiers

TIER = tiers.ZK_BACKUP
UID = 10001  # the services image's unprivileged user
HOME = "/home/zk-backup"  # the AWS SDK reads $HOME/.aws/credentials


def snapshot_args(b: ZkBackupSettings, source: str, tls: ClientTls = NO_TLS) -> list[str]:
    """The CronJob's command line (after `orchestrator`): the restore drill test runs exactly this."""
    args = ["zk", "snapshot", "--source", source, *tls.args("--source-tls"), "--s3", b.s3,
            "--retention-hours", str(b.retention_hours)]
    for path in b.paths:
        args += ["--path", path]
    if b.check_lifecycle_only:
        args.append("--check-lifecycle-only")
    if b.endpoint_url:
        args += ["--endpoint-url", b.endpoint_url]
    return args


@dataclass(frozen=True)
class ZkBackupArgs:
    platform: kx.PlatformContext
    zk_backup: ZkBackupSettings
    image: str  # the services image (service.image)
    source_connect: pulumi.Input[str]  # this platform's ensemble (its secure client port with TLS)
    s3_secret: pulumi.Input[str] | None = None  # credentials tier Secret: `credentials` (AWS SDK file format)
    tls: ClientTls = NO_TLS  # zookeeper.tls_secret: the snapshot reads over TLS


class ZkBackup(pulumi.ComponentResource):
    def __init__(self, name: str, args: ZkBackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:zk_backup:ZkBackup", name, None, opts)
        b = args.zk_backup
        t = kx.TierContext.of(self, TIER, name, args.platform)
        # The role annotation lets the cloud's workload identity hand the pod S3 credentials (no static keys).
        account = k8s.core.v1.ServiceAccount(
            t.name, metadata=t.metadata(annotations=dict(b.service_account_annotations) or None),
            automount_service_account_token=False, opts=t.opts)
        s3 = sec.External("s3", tuple(b.s3_cidrs), {"https": 443})
        self.peer = sec.Peer.of(t, {})
        self.flows = [
            sec.Flow(TIER, tiers.ZOOKEEPER, args.tls.port, "the backup reads the subtrees it snapshots"),
            sec.Flow(TIER, s3, "https", "the backup writes its snapshot to S3"),
        ]
        env: list[dict[str, Any]] = [{"name": "AWS_DEFAULT_REGION", "value": b.region}, {"name": "HOME", "value": HOME}]
        volumes, mounts = args.tls.volumes()
        if args.s3_secret is not None:
            volume, mount = kx.secret_volume("s3", args.s3_secret, ("credentials",), f"{HOME}/.aws")
            volumes.append(volume)
            mounts.append(mount)
        container = kx.container({
            "name": "zk-snapshot",
            "image": args.image,
            "command": ["orchestrator"],
            "args": pulumi.Output.from_input(args.source_connect).apply(
                lambda source: snapshot_args(b, source, args.tls)),
            "env": env,
            "volume_mounts": mounts,
        }, b.resources)
        pod = t.pod_spec(account, [container], uid=UID, spread=None, restart_policy="Never", volumes=volumes)
        self.cronjob = k8s.batch.v1.CronJob(
            t.name,
            metadata=t.metadata(annotations=kx.checkov_skips(b.resources)),
            spec={
                "schedule": b.schedule,
                # One snapshot at a time; a run that missed its slot by more than an hour is skipped, not
                # stacked up after an outage.
                "concurrency_policy": "Forbid",
                "starting_deadline_seconds": 3600,
                "successful_jobs_history_limit": 3,
                "failed_jobs_history_limit": 3,
                "job_template": {"spec": {
                    "backoff_limit": 2,
                    "active_deadline_seconds": b.timeout_seconds,
                    "template": {"metadata": {"labels": t.labels, **({"annotations": args.tls.annotations()}
                                                                      if args.tls.annotations() else {})},
                                 "spec": pod},
                }},
            },
            opts=t.opts)
        self.register_outputs({"cronjob": self.cronjob.metadata["name"]})
