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

setup: $(STAMP) .stamp-system-tools

check: setup
	$(VENV)/bin/orchestrator check --stack $(or $(STACK),dev)

render: $(STAMP)
	$(VENV)/bin/orchestrator render --stack $(or $(STACK),dev)

test: setup
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python scripts/bench_render.py

clean:
	rm -rf $(VENV) rendered .stamp-system-tools
