# make reproduce: set up .venv (pinned, idempotent), train what is pending and execute every notebook;
# make test: unit tests + notebooks; make estimate [ANALYSIS=size|cost|study]: pending time, and the recorded runs'
# time beside their estimate. PROFILE=smoke|quick|cpu|cpu_long|paper, BENCHMARKS="cifar10 ...",
# EXECUTOR=serial|local|dask (default: the profile's, local for quick on a CPU: one single-threaded process per core,
# or WORKERS=n), DASK_SCHEDULER=,
# DATA=<folder holding the datasets> (default data/; e.g. DATA=../shared/data for an image-folder copy of CIFAR-10).
PYTHON ?= python3.11
PROFILE ?= quick
BENCHMARKS ?=
DATA ?= data
EXECUTOR ?=
WORKERS ?=
DASK_SCHEDULER ?=
RUN_FLAGS = --profile $(PROFILE) --data "$(DATA)" $(if $(BENCHMARKS),--benchmarks "$(BENCHMARKS)",)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup reproduce estimate verify test bench lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

reproduce: setup
	$(PY) -m joint reproduce $(RUN_FLAGS) $(if $(EXECUTOR),--executor $(EXECUTOR),) $(if $(WORKERS),--workers $(WORKERS),) $(if $(DASK_SCHEDULER),--scheduler $(DASK_SCHEDULER),)

estimate: setup
	$(PY) -m joint estimate $(RUN_FLAGS) $(if $(ANALYSIS),--analysis $(ANALYSIS),)

verify: setup  # KEY=<record key> [RELOAD=1]: train one recorded run again (or measure its model again) and compare
	$(PY) -m joint verify $(KEY) --profile $(PROFILE) --data "$(DATA)" $(if $(RELOAD),--reload,)

test: setup
	$(PY) -m pytest --nbval-lax tests notebooks

bench: setup  # PYTHONPATH: this checkout's joint, even where .venv's editable install points at another clone
	PYTHONPATH=. $(PY) benchmarks/step_time.py
	PYTHONPATH=. $(PY) benchmarks/step_breakdown.py
	PYTHONPATH=. $(PY) benchmarks/data_pipeline.py

lab: setup
	$(VENV)/bin/jupyter lab $(ROOT_FLAG)

clean:
	rm -rf results/bench results/smoke figures/smoke .pytest_cache
