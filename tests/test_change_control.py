"""Change control (issue 16): what a pull request that edits components/ or a stack file can slip past
`orchestrator render`/`check` (red-team report F6 and F16), reproduced the report's way, in a temporary
copy of the project whose components are edited, and run by the CLI in its own process.

Each case failed on the code before this change (the report's table: rc=0 for every row)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from orchestrator.toolchain.render import PROJECT_DIR
from tests.support.project_copy import add_to_tier, copy_project, run_cli
from tests.support.tools import require_checkov, require_tool

LABELS = ('{"app.kubernetes.io/name": "rt", "app.kubernetes.io/instance": "marathon", '
          '"app.kubernetes.io/component": "marathon", "app.kubernetes.io/part-of": "orchestrator", '
          '"app.kubernetes.io/managed-by": "pulumi"}')
# A pod that checkov alone would catch, with the self-service skip annotations the report added.
SKIPS = '{f"checkov.io/skip{i}": f"CKV_K8S_{n}=planted skip with a reason long enough" for i, n in ' \
        'enumerate((16, 17, 19, 20, 23, 25, 26, 28, 29, 30, 31, 37, 40, 43, 11, 22, 35, 13, 12, 10, 9, 8), 1)}'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


def _tools() -> None:
    require_tool("promtool", hint="apt-get install prometheus")
    require_checkov()


# --- nothing escapes the render ------------------------------------------------------------------
DAEMONSET = ('{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "rt", "namespace": "kube-system"}, '
             '"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, '
             '"spec": {"hostPID": True, "containers": [{"name": "c", "image": "busybox:1.36", '
             '"securityContext": {"privileged": True}}]}}}}')


@pytest.mark.parametrize("code,type_", [
    # The report's case: a privileged hostPID DaemonSet in kube-system through a provider-side component.
    (f"k8s.yaml.v2.ConfigGroup('rt', objs=[{DAEMONSET}], opts=child)", "kubernetes:yaml/v2:ConfigGroup"),
    ("k8s.yaml.v2.ConfigFile('rt', file='x.yaml', opts=child)", "kubernetes:yaml/v2:ConfigFile"),
    ("k8s.helm.v4.Chart('rt', chart='oci://example.com/charts/x', opts=child)", "kubernetes:helm.sh/v4:Chart"),
    ("k8s.kustomize.v2.Directory('rt', directory='.', opts=child)", "kubernetes:kustomize/v2:Directory"),
    # An explicit provider aimed at another cluster: what uses it would land there, not where the tree says.
    ("k8s.Provider('rt', kubeconfig='{}', opts=child)", "pulumi:providers:kubernetes"),
])
def test_a_resource_without_a_manifest_fails_the_render_by_name(project, tmp_path, code, type_):
    add_to_tier(project, "marathon", "Marathon", code)
    proc = run_cli(project, "render", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{type_} 'rt' (marathon)" in proc.stderr and "produce no manifest offline" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_the_diff_cannot_show_such_a_resource_as_no_changes(project, tmp_path):
    """The report: `orchestrator diff` said "no changes" (rc=0) for the ConfigGroup. Now the head side
    does not render, so there is no verdict at all (exit 1) rather than a false "no changes"."""
    import subprocess
    for args in (["init", "-q", "-b", "main"], ["add", "."],
                 ["-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True)
    add_to_tier(project, "marathon", "Marathon", f"k8s.yaml.v2.ConfigGroup('rt', objs=[{DAEMONSET}], opts=child)")
    proc = run_cli(project, "diff", "--stack", "dev")
    assert proc.returncode == 1 and "produce no manifest offline" in proc.stderr, proc.stdout + proc.stderr
    assert "no changes" not in proc.stdout.lower()


# --- the policy pack over edited components (one `check` holds every planted object) ------------------
PLANTED = f"""
ns = args.platform.namespace
def meta(n, **extra):
    return {{"name": n, "namespace": ns, "labels": {LABELS}, **extra}}
pod = {{"containers": [{{"name": "c", "image": "busybox:1.36", "securityContext": {{"privileged": True}},
        "resources": {{"requests": {{"cpu": "10m", "memory": "8Mi"}}, "limits": {{"memory": "8Mi"}}}}}}]}}
k8s.batch.v1.CronJob("rt-cron", metadata=meta("rt-cron", annotations={SKIPS}),
    spec={{"schedule": "* * * * *", "jobTemplate": {{"spec": {{"template": {{"metadata": {{"labels": {LABELS}}},
          "spec": dict(pod, restartPolicy="Never")}}}}}}}}, opts=child)
k8s.apps.v1.ReplicaSet("rt-rs", metadata=meta("rt-rs", annotations={SKIPS}),
    spec={{"selector": {{"matchLabels": {{"rt": "rs"}}}}, "template": {{"metadata": {{"labels": dict({LABELS}, rt="rs")}},
          "spec": pod}}}}, opts=child)
root = {{"containers": [{{"name": "c", "image": "busybox:1.36", "ports": [{{"containerPort": 80, "hostPort": 80}}],
         "securityContext": {{"runAsUser": 0, "allowPrivilegeEscalation": False}},
         "args": ["--zk_password=hunter2"],
         "env": [{{"name": "JAVA_OPTS", "value": "-Xmx1g -Dzookeeper.DigestAuthenticationProvider.superDigest=super:Zm9v"}},
                 {{"name": "ZK_DIGEST", "value": "super:Zm9v"}}],
         "resources": {{"requests": {{"cpu": "10m", "memory": "8Mi"}}, "limits": {{"memory": "8Mi"}}}}}}]}}
k8s.apps.v1.Deployment("rt-root", metadata=meta("rt-root", annotations={SKIPS}),
    spec={{"selector": {{"matchLabels": {{"rt": "root"}}}}, "template": {{"metadata": {{"labels": dict({LABELS}, rt="root")}},
          "spec": root}}}}, opts=child)
k8s.rbac.v1.ClusterRoleBinding("rt-admin", metadata={{"name": "rt-admin", "labels": {LABELS}}},
    role_ref={{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}},
    subjects=[{{"kind": "ServiceAccount", "name": "marathon", "namespace": ns}}], opts=child)
k8s.core.v1.Service("rt-nodeport", metadata=meta("rt-nodeport"), spec={{"type": "NodePort",
    "selector": {{"app.kubernetes.io/component": "marathon"}}, "ports": [{{"port": 8080, "targetPort": "http"}}]}}, opts=child)
k8s.core.v1.Service("rt-external", metadata=meta("rt-external"), spec={{"externalIPs": ["203.0.113.10"],
    "selector": {{"app.kubernetes.io/component": "marathon"}}, "ports": [{{"port": 8081, "targetPort": "http"}}]}}, opts=child)
k8s.networking.v1.Ingress("rt-ingress", metadata=meta("rt-ingress"), spec={{"rules": [{{"http": {{"paths": [
    {{"path": "/", "pathType": "Prefix", "backend": {{"service": {{"name": "marathon", "port": {{"number": 8080}}}}}}}}]}}}}]}},
    opts=child)
"""


def test_check_refuses_what_the_report_got_through(project, tmp_path):
    _tools()
    add_to_tier(project, "marathon", "Marathon", PLANTED)
    proc = run_cli(project, "check", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    expected = [
        r"policy no-broad-rbac: rt-admin: ClusterRoleBinding to the built-in role cluster-admin",
        r"policy no-node-port: rt-nodeport: NodePort",
        r"policy no-external-ips: rt-external: Service externalIPs",
        r"policy ingress-only-with-tls: rt-ingress: Ingresses expose the platform",
        r"policy privileged-only-in-agent-namespaces: rt-cron: host privileges .*container c privileged",
        r"policy privileged-only-in-agent-namespaces: rt-rs: host privileges .*container c privileged",
        r"policy privileged-only-in-agent-namespaces: rt-root: .*runs as root \(runAsUser 0\).*binds a hostPort",
        r"policy no-secret-in-plain-env: rt-root: container c: env JAVA_OPTS holds a secret",
        r"policy no-secret-in-plain-env: rt-root: container c: env ZK_DIGEST holds a secret",
        r"policy no-secret-in-plain-env: rt-root: container c: command-line argument 1 carries a secret",
        r"policy checkov-skips-reviewed: rt-cron: checkov skip CKV_K8S_16 on CronJob/rt-cron is not in "
        r"policy/checkov-skips.json",
    ]
    for pattern in expected:
        assert re.search(pattern, err), f"{pattern!r} not in:\n{err}"
    assert not (tmp_path / "out").exists()
    # The secrets themselves are never printed.
    assert "hunter2" not in err and "Zm9v" not in err


def test_a_platform_namespace_named_like_the_agents_one_gets_no_privileges(project, tmp_path):
    """The report: `namespace: ops-agents` made the platform namespace match the '-agents' suffix, so a
    privileged hostNetwork/hostPath pod in it passed. The names are now compared exactly with what the
    registry derives (ops-agents-agents), and policy/dev.json must say so."""
    _tools()
    stack = project / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("orchestrator:namespace: orchestrator-dev",
                                               "orchestrator:namespace: ops-agents"))
    proc = run_cli(project, "check", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert ('policy/dev.json: privileged-only-in-agent-namespaces.namespaces is ["orchestrator-dev-agents"], '
            'the stack says ["ops-agents-agents"]') in proc.stderr
    # With the policy file right, a privileged pod in the (restricted) platform namespace is refused.
    policy = json.loads((project / "policy" / "dev.json").read_text())
    policy["privileged-only-in-agent-namespaces"]["namespaces"] = ["ops-agents-agents"]
    (project / "policy" / "dev.json").write_text(json.dumps(policy))
    add_to_tier(project, "marathon", "Marathon", f"""
k8s.apps.v1.Deployment("rt-priv", metadata={{"name": "rt-priv", "namespace": args.platform.namespace,
    "labels": {LABELS}, "annotations": {SKIPS}}},
    spec={{"selector": {{"matchLabels": {{"rt": "p"}}}}, "template": {{"metadata": {{"labels": dict({LABELS}, rt="p")}},
          "spec": {{"hostNetwork": True, "volumes": [{{"name": "h", "hostPath": {{"path": "/var/lib/mesos/x"}}}}],
                   "containers": [{{"name": "c", "image": "busybox:1.36", "securityContext": {{"privileged": True}},
                                   "resources": {{"requests": {{"cpu": "10m", "memory": "8Mi"}},
                                                 "limits": {{"memory": "8Mi"}}}}}}]}}}}}}, opts=child)
""")
    proc = run_cli(project, "check", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert re.search(r"policy privileged-only-in-agent-namespaces: rt-priv: host privileges outside the "
                     r"privileged namespaces \['ops-agents-agents'\] \(namespace ops-agents\)", proc.stderr), proc.stderr


def test_a_lowered_pod_security_label_is_refused(project, tmp_path):
    _tools()
    platform = project / "components" / "platform.py"
    text = platform.read_text()
    assert '(s.namespace, "restricted")' in text
    platform.write_text(text.replace('(s.namespace, "restricted")', '(s.namespace, "privileged")'))
    proc = run_cli(project, "check", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert ("policy privileged-only-in-agent-namespaces: namespace-orchestrator-dev: namespace orchestrator-dev is not one "
            "the tier registry marks privileged") in proc.stderr, proc.stderr


def test_host_paths_outside_the_allow_list_are_refused(project, tmp_path):
    """F14's `mesos_agent.work_dir: /` mounted the host's root into the agent. The settings refuse system
    directories; the pack refuses any host path outside its reviewed allow-list, so moving the work dir is
    also a change to policy/<stack>.json."""
    _tools()
    stack = project / "Pulumi.dev.yaml"
    doc = yaml.safe_load(stack.read_text())
    doc["config"]["orchestrator:mesos_agent"]["work_dir"] = "/srv/mesos-work"
    stack.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = run_cli(project, "check", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert ("policy host-paths-in-allow-list: mesos-agent: volume work: host path '/srv/mesos-work' is not in "
            "the allow-list") in proc.stderr, proc.stderr
    policy = json.loads((project / "policy" / "dev.json").read_text())
    policy["host-paths-in-allow-list"]["allowed"].append("/srv/mesos-work")
    (project / "policy" / "dev.json").write_text(json.dumps(policy))
    proc = run_cli(project, "check", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr


# --- stack files and policy files -------------------------------------------------------------------
@pytest.mark.parametrize("url", ["https://bot:ghp_0123456789abcdef@github.com/o/r.git",
                                 "https://ghp_0123456789abcdef@github.com/o/r.git",
                                 "ssh://git:ghp_0123456789abcdef@github.com/o/r.git"])
def test_a_token_in_the_repository_url_is_refused_and_never_written(project, tmp_path, url):
    stack = project / "Pulumi.prod.yaml"
    doc = yaml.safe_load(stack.read_text())
    doc["config"]["orchestrator:gitops"]["repo_url"] = url
    stack.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = run_cli(project, "render", "--stack", "prod", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "orchestrator:gitops.repo_url: Value error, carries credentials" in proc.stderr
    assert "ghp_0123456789abcdef" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()


def test_production_cannot_follow_main(project, tmp_path):
    stack = project / "Pulumi.prod.yaml"
    stack.write_text(stack.read_text().replace("revision: release", "revision: main"))
    proc = run_cli(project, "render", "--stack", "prod", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "orchestrator:gitops.revision: 'main' moves with every merge" in proc.stderr


def test_a_new_stack_without_its_policy_file_fails_the_check(project, tmp_path):
    """F16: a new production stack ran the pack with non-production defaults, silently."""
    (project / "Pulumi.staging.yaml").write_text((project / "Pulumi.prod.yaml").read_text())
    proc = run_cli(project, "check", "--stack", "staging", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "policy/staging.json: no policy file for this stack" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_policy_file_that_disagrees_with_its_stack_fails_the_check(project, tmp_path):
    _tools()
    (project / "Pulumi.staging.yaml").write_text((project / "Pulumi.prod.yaml").read_text())
    policy = json.loads((project / "policy" / "dev.json").read_text())  # a copy of dev's: non-production
    policy["no-such-policy"] = {}
    (project / "policy" / "staging.json").write_text(json.dumps(policy))
    proc = run_cli(project, "check", "--stack", "staging", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    for words in ("policy/staging.json: ha-replicas-and-budgets.production is false, the stack says true",
                  'privileged-only-in-agent-namespaces.namespaces is ["orchestrator-dev-agents"], the stack says '
                  '["orchestrator-agents"]', "policy/staging.json: no-such-policy: no such policy"):
        assert words in proc.stderr, proc.stderr


# --- no placeholder Secrets in the committed tree ----------------------------------------------------
def test_the_committed_tree_holds_no_secret():
    """F16: `kubectl apply -R -f rendered/prod` set every password to the literal placeholder."""
    for path in (PROJECT_DIR / "rendered").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc is None or doc.get("kind") != "Secret", f"{path}: {doc['metadata']['name']}"
        assert "[redacted-secret]" not in path.read_text(), path
    assert not (PROJECT_DIR / "rendered" / "prod" / "auth").exists()


def test_a_secret_outside_the_credentials_tier_fails_the_render(project, tmp_path):
    add_to_tier(project, "marathon", "Marathon", """
k8s.core.v1.Secret("rt-secret", metadata={"name": "rt-secret", "namespace": args.platform.namespace},
                   string_data={"password": "x"}, opts=child)""")
    proc = run_cli(project, "render", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "Secrets outside the credentials tier (marathon/rt-secret)" in proc.stderr
    assert not (tmp_path / "out").exists()
