# make install: creates .venv and installs the pinned stack (idempotent: reinstalls only when pins change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install test demo pipeline bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps imitation==1.0.1  # its pins (SB3 2.2, gymnasium 0.29) conflict; its imports are in requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

test: install
	$(PY) tools/run_tests.py

demo: install
	$(PY) -m resdex_sb3.demo

pipeline: install
	$(PY) -m resdex_sb3.pipeline --preset cpu --out runs/pipeline-cpu

bench: install
	$(PY) benchmarks/env_throughput.py --quick
	$(PY) benchmarks/object_throughput.py --quick
	$(PY) benchmarks/train_throughput.py --quick
	$(PY) benchmarks/render_cost.py

clean:
	rm -rf $(VENV) runs .pytest_cache
