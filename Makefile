# Offline targets: install, lint, test, synth, demo (ARGS="--jobs N --seed S"), bench.  AWS targets: deploy, diff, destroy.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install lint test synth demo bench deploy diff destroy clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@echo "==> creating $(VENV) and installing pinned dependencies (first run takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

synth: install
	$(PY) app.py
	@echo "==> cdk.out/TrainingAutoscaler.template.json (cdk-nag AwsSolutions: no unacknowledged findings)"

demo: install
	$(PY) -m local $(ARGS)

bench: install
	$(PY) -m bench $(ARGS)

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --silent
	@touch $@

deploy: install $(NODE_STAMP)
	npx cdk deploy $(ARGS)

diff: install $(NODE_STAMP)
	npx cdk diff $(ARGS)

destroy: install $(NODE_STAMP)
	npx cdk destroy $(ARGS)

clean:
	rm -rf $(VENV) node_modules cdk.out demo-output bench-output .pytest_cache .mypy_cache .ruff_cache
