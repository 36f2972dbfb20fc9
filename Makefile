# Two commands on a fresh machine: `make check` (render + check the dev stack offline), `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup check test render bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[platform,test]'
	touch $(STAMP)

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

setup: $(STAMP) .stamp-system-tools node_modules/.stamp $(CHECKOV)

check: setup
	$(VENV)/bin/orchestrator check --stack $(or $(STACK),dev)

render: $(STAMP)
	$(VENV)/bin/orchestrator render --stack $(or $(STACK),dev)

test: setup
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python scripts/bench_render.py

clean:
	rm -rf $(VENV) rendered .stamp-system-tools node_modules
