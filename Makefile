# Two commands on a fresh machine: `make check` (render + check the dev stack offline), `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup check test render bench bench-ui demo clean lock

# Every Python package, indirect ones too, at the version and with the hashes of requirements/dev.lock
# (`make lock` writes it from pyproject.toml; tests/test_lock.py keeps them in step); then the project itself.
$(STAMP): pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes -r requirements/dev.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

# pip-tools in a virtualenv of its own, pinned: `make lock` after any change to pyproject.toml's dependencies.
PIP_TOOLS_VERSION := 7.6.2
PIP_COMPILE := $(VENV)/tools/pip-tools/bin/pip-compile
$(PIP_COMPILE): Makefile
	$(PYTHON) -m venv $(VENV)/tools/pip-tools
	$(VENV)/tools/pip-tools/bin/pip install -q 'pip-tools==$(PIP_TOOLS_VERSION)'
	touch $(PIP_COMPILE)

lock: $(PIP_COMPILE)
	CUSTOM_COMPILE_COMMAND='make lock' $(PIP_COMPILE) -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra platform --extra test -o requirements/dev.lock pyproject.toml
	CUSTOM_COMPILE_COMMAND='make lock' $(PIP_COMPILE) -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements/services.lock pyproject.toml

.stamp-system-tools: scripts/install-system-tools.sh
	./scripts/install-system-tools.sh
	touch .stamp-system-tools

# npm packages the checks run (Argo CRD validators), exactly as package-lock.json pins them.
node_modules/.stamp: package.json package-lock.json .stamp-system-tools
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.stamp

# checkov (Dockerfile scan in the tests) pins an older boto3 than the project: a virtualenv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(VENV)/tools/checkov/bin/checkov
$(CHECKOV): Makefile | $(STAMP)
	$(PYTHON) -m venv $(VENV)/tools/checkov
	$(VENV)/tools/checkov/bin/pip install -q 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV)

# The web UI's packages (React, Vite, Cytoscape, vitest, playwright-core), exactly as ui/package-lock.json pins them.
ui/node_modules/.stamp: ui/package.json ui/package-lock.json .stamp-system-tools
	npm --prefix ui ci --no-audit --no-fund --loglevel=error
	touch ui/node_modules/.stamp

setup: $(STAMP) .stamp-system-tools node_modules/.stamp ui/node_modules/.stamp $(CHECKOV)

check: setup
	$(VENV)/bin/orchestrator check --stack $(or $(STACK),dev)

render: $(STAMP)
	$(VENV)/bin/orchestrator render --stack $(or $(STACK),dev)

test: setup
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python scripts/bench_render.py

# The web UI with a demo topology on 127.0.0.1: builds ui/dist, starts the API (built-in fake Marathon) and
# prints the URL and one login per role (random each run). DEMO=HOSTS:CONTAINERS_PER_HOST, PORT=8080 (0: any free port).
demo: $(STAMP) ui/node_modules/.stamp
	npm --prefix ui run --silent build
	$(VENV)/bin/orchestrator api serve --demo-topology $(or $(DEMO),50:10) --listen 127.0.0.1:$(or $(PORT),8080) --ui-dir ui/dist

bench-ui: ui/node_modules/.stamp
	npm --prefix ui run --silent build
	node scripts/bench_ui.mjs

clean:
	rm -rf $(VENV) rendered .stamp-system-tools node_modules ui/node_modules ui/dist
