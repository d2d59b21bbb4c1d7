# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
RECSYS_HOME ?= $(CURDIR)/.recsys
DAGSTER_HOME ?= $(RECSYS_HOME)/dagster_home
export RECSYS_HOME DAGSTER_HOME

.PHONY: install demo test ui benchmarks clean dagster-home

install: $(VENV)/.installed

# torch first, pinned: pip takes the local CPU build (any other spec pulls CUDA wheels).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip check
	touch $@

dagster-home:
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp deploy/dagster-local.yaml $(DAGSTER_HOME)/dagster.yaml

## The main job: simulate a streaming platform, run the whole asset graph, print a summary.
demo: install dagster-home
	$(VENV)/bin/recsys demo $(DEMO_ARGS)

## The test suite (real Spark, Delta, Feast, torch, faiss; S3 on a loopback server).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

## The Dagster UI on http://127.0.0.1:3000 (runs of `make demo` show up there).
ui: install dagster-home
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

benchmarks: install
	$(PY) benchmarks/ingest.py

clean:
	rm -rf $(RECSYS_HOME)
