# make reproduce: set up .venv (pinned, idempotent) and execute every notebook; make test: unit tests + notebooks.
PYTHON ?= python3.11
PROFILE ?= quick
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup reproduce test bench lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

reproduce: setup
	$(PY) -m joint reproduce --profile $(PROFILE)

test: setup
	$(PY) -m pytest --nbval-lax tests notebooks

bench: setup
	$(PY) benchmarks/step_time.py

lab: setup
	$(VENV)/bin/jupyter lab $(ROOT_FLAG)

clean:
	rm -rf results/bench results/smoke figures/smoke .pytest_cache
