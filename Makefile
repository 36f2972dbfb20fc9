# Two commands on a fresh machine: `make check` (render + check the dev stack offline), `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup check test render bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

.stamp-system-tools: scripts/install-system-tools.sh
	./scripts/install-system-tools.sh
	touch .stamp-system-tools

# npm packages the checks run (Argo CRD validators), exactly as package-lock.json pins them.
node_modules/.stamp: package.json package-lock.json .stamp-system-tools
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.stamp

setup: $(STAMP) .stamp-system-tools node_modules/.stamp

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
