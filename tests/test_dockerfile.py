"""The services image's Dockerfile: checkov's Dockerfile checks pass (and fail a bad one), the build is
multi-stage on a pinned slim base, the final stage runs as a non-root user without build tools, and the
image the deploy workflow pushes is the one the stacks' settings name."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from orchestrator.toolchain.render import PROJECT_DIR
from tests.support.tools import require_tool

DOCKERFILE = PROJECT_DIR / "Dockerfile"
CHECKOV = PROJECT_DIR / ".venv" / "tools" / "checkov" / "bin" / "checkov"


def checkov(path) -> dict:
    tool = require_tool("checkov", str(CHECKOV), hint="make setup (own virtualenv: .venv/tools/checkov)")
    # --skip-download: offline, no guideline fetch from the vendor's API.
    proc = subprocess.run([tool, "-f", str(path), "--framework", "dockerfile", "--skip-download", "-o", "json"],
                          capture_output=True, text=True, env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/bin:/bin"})
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def stages(text: str) -> list[list[str]]:
    """Instructions (continuation lines joined) grouped by FROM."""
    lines = re.sub(r"\\\n\s*", " ", text).splitlines()
    out: list[list[str]] = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def test_checkov_dockerfile_checks_pass():
    report = checkov(DOCKERFILE)
    summary = report["summary"]
    failed = [(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and summary["parsing_errors"] == 0
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    # The checks this image is about ran and passed: non-latest tag, user created, last USER not root,
    # healthcheck, no sudo, pip keeps certificate validation.
    assert {"CKV_DOCKER_7", "CKV_DOCKER_3", "CKV_DOCKER_8", "CKV_DOCKER_2", "CKV2_DOCKER_1", "CKV2_DOCKER_4"} <= passed


def test_checkov_rejects_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nADD . /app\nRUN pip install --trusted-host pypi.org /app\nUSER root\n")
    failed = {c["check_id"] for c in checkov(bad)["results"]["failed_checks"]}
    assert {"CKV_DOCKER_7", "CKV_DOCKER_4", "CKV_DOCKER_8", "CKV_DOCKER_2"} <= failed


def test_multi_stage_pinned_slim_base_non_root_no_build_tools():
    build, ui, runtime = stages(DOCKERFILE.read_text())
    base = build[0].split()[1]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm", base), "a pinned patch release of the slim image"
    assert runtime[0].split()[1] == base, "the virtualenv runs on the interpreter it was built with"
    final = "\n".join(runtime)
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and re.fullmatch(r"[1-9]\d{3,}(:[1-9]\d{3,})?", users[-1]), "numeric non-root user"
    assert "COPY --from=build /opt/venv /opt/venv" in final
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "COPY . "):
        assert tool not in final, f"final stage has {tool!r}"
    assert "pip uninstall --yes pip setuptools wheel" in final
    assert 'ENTRYPOINT ["orchestrator"]' in final
    # The web UI: built by a pinned Node in its own stage from the lockfile; only its files reach the image.
    assert re.fullmatch(r"node:\d+\.\d+\.\d+-bookworm-slim", ui[0].split()[1]) and ui[0].endswith(" AS ui")
    assert "RUN npm ci --loglevel=error" in ui and "RUN npm run build" in ui
    assert "COPY --from=ui /ui/dist /opt/orchestrator/ui" in final
    assert "npm" not in final and "node:" not in final


def test_build_context_is_an_allowlist():
    rules = [line for line in (PROJECT_DIR / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules[0] == "*"
    ui = {"ui/package.json", "ui/package-lock.json", "ui/tsconfig.json", "ui/vite.config.ts", "ui/index.html", "ui/src"}
    context = {"pyproject.toml", "requirements/services.lock", "components", "orchestrator"}
    assert {r[1:].rstrip("/") for r in rules if r.startswith("!")} == context | ui
    copied = {line.split()[1] for line in stages(DOCKERFILE.read_text())[0] if line.startswith("COPY ")}
    assert copied == context
    ui_copied = {src for line in stages(DOCKERFILE.read_text())[1] if line.startswith("COPY ") for src in line.split()[1:-1]}
    assert ui_copied == ui


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deploy_pushes_the_image_the_settings_name(stack):
    from components.settings import settings_from_config
    from orchestrator.toolchain.render import load_stack_config

    config, secret_keys, source = load_stack_config(stack)
    image = settings_from_config(config, source, set(secret_keys)).service.image
    repository = image.rsplit(":", 1)[0].rsplit("/", 1)[1]
    deploy = (PROJECT_DIR / ".github" / "workflows" / "deploy.yml").read_text()
    # The image job pushes ghcr.io/<owner>/<repository>:<commit sha> (release tags re-publish it for prod).
    assert f'repo="ghcr.io/${{OWNER,,}}/{repository}"' in deploy and 'echo "ref=$repo:$SHA"' in deploy
    pulumi = (PROJECT_DIR / ".github" / "workflows" / "pulumi.yml").read_text()
    assert 'orchestrator:service.image "$IMAGE"' in pulumi, "each deploy sets the stack's image to the pushed tag"
