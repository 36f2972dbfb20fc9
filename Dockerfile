# syntax=docker/dockerfile:1
# The project's own services — the ZooKeeper sync engine now (`orchestrator zk sync …`), the probe agent,
# autoscaler and API later — as one image with one entry point: the `orchestrator` CLI.
#
# Base: the official Python image, Debian 12 "bookworm" slim, Python 3.11 (the version the tests run on;
# https://hub.docker.com/_/python, tag 3.11.16-slim-bookworm). Both stages use the same base so the
# virtualenv built in the first runs unchanged in the second. Every dependency ships wheels for amd64
# and arm64: no compiler is installed in either stage. Built and pushed for linux/amd64 and linux/arm64
# by .github/workflows/deploy.yml (ghcr.io/<owner>/<repo>/services:<commit sha>); the stacks take the
# tag from the `orchestrator:services_image` setting. Scanned by checkov in tests/test_dockerfile.py.

FROM python:3.11.16-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/services.lock ./requirements/
COPY pyproject.toml ./
COPY components ./components
COPY orchestrator ./orchestrator
# A self-contained virtualenv; pip itself is removed from it once the package is installed.
# The dependencies exactly as requirements/services.lock pins and hashes them, then the project alone.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r requirements/services.lock \
 && /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip uninstall --yes pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# The web UI (ui/, React + Vite): Node only in this stage; the final image gets the static files and nothing
# of Node. Node 22 on bookworm slim (official image, tag 22.23.2-bookworm-slim); the lockfile pins every package.
FROM node:22.23.2-bookworm-slim AS ui
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --loglevel=error
COPY ui/tsconfig.json ui/vite.config.ts ui/index.html ./
COPY ui/src ./src
RUN npm run build

FROM python:3.11.16-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="orchestrator services" \
      org.opencontainers.image.description="ZooKeeper sync engine and the other services of the Mesos/Marathon platform" \
      org.opencontainers.image.licenses="Apache-2.0"
# No package managers for Python in the final image; a fixed numeric user that owns nothing it runs.
RUN python -m pip uninstall --yes pip setuptools wheel \
 && groupadd --system --gid 10001 orchestrator \
 && useradd --system --uid 10001 --gid orchestrator --no-create-home --shell /usr/sbin/nologin orchestrator
COPY --from=build /opt/venv /opt/venv
# The API serves these at / when its config says `ui_dir: /opt/orchestrator/ui` (read-only, owned by root).
COPY --from=ui /ui/dist /opt/orchestrator/ui
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /home/orchestrator
USER 10001:10001
# `orchestrator zk sync` serves Prometheus metrics on 9143 (--metrics-port): healthy while it answers.
# One-shot commands (copy, verify, snapshot) exit before the first check. Kubernetes ignores this and
# uses the probes of each Deployment.
EXPOSE 9143
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9143/metrics', timeout=4)"]
ENTRYPOINT ["orchestrator"]
CMD ["--help"]
