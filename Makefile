# Every target builds what it needs in .venv from the project's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

venv: $(STAMP)

# Generates a small DSTL-format dataset, runs the whole workflow on it, prints where the report is.
demo: $(STAMP)
	$(VENV)/bin/sattag generate demo-data --scenes 6 --train 4 --size 800 --seed 7
	$(VENV)/bin/sattag run demo-data --out demo-run --workers 2
	@echo "Report: $(abspath demo-run/report.html)"

# The fast tier by default (under 3 minutes on 2 cores); SLOW=1 adds the slow tier (CI runs both).
TIER := $(if $(SLOW),,-m "not slow")
# Test files run in TEST_PROCS processes (pytest-xdist), a file's tests in one process so that its
# module fixtures are built once. Most tests wait on subprocesses, Dask workers and files, so two
# processes on this 2-core machine took the whole suite (SLOW=1) from 23 min 8 s to 9 min 22 s and the
# fast tier to 2 min 39 s. TEST_PROCS=0: one process, as before.
TEST_PROCS ?= 2
XDIST := $(if $(filter 0,$(TEST_PROCS)),,-n $(TEST_PROCS) --dist loadfile)

test: $(VENV)/.installed-test
	$(PY) -m pytest tests $(TIER) $(XDIST) $(PYTEST_ARGS)

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo-data demo-run .pytest_cache
