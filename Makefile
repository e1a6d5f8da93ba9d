# make bench: set up .venv (pinned, idempotent) and run the step-time benchmark; make test: the test suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup test bench lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/step_time.py

lab: setup
	$(VENV)/bin/jupyter lab $(ROOT_FLAG)

clean:
	rm -rf results/bench .pytest_cache
