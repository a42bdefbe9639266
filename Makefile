# isofield: `make demo` and `make test` each build the environment from nothing, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOCK   := requirements/lock.txt
STAMP  := $(VENV)/.installed

.PHONY: install demo lint test test-slow data bench lock clean-venv

install: $(STAMP)

# Every install goes through the lock file as a constraint: it pins torch==2.13.0 (the CPU build),
# so no dependency can pull a newer torch with gigabytes of CUDA packages.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(LOCK) $(PY) -m pip install --quiet --upgrade pip==$$(sed -n 's/^pip==//p' $(LOCK))
	PIP_CONSTRAINT=$(LOCK) $(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/isofield demo

# The import contracts in pyproject.toml ([tool.importlinter]): layers, families side by side.
lint: $(STAMP)
	$(VENV)/bin/lint-imports

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

data:
	scripts/fetch_cgal_data.sh .cache/cgal

bench: $(STAMP) data
	dpkg -s libusb-1.0-0 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq libusb-1.0-0)
	PIP_CONSTRAINT=$(LOCK) $(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/sdf_samples.py
	$(PY) benchmarks/extraction.py
	$(PY) benchmarks/fit.py
	$(PY) benchmarks/scan_fit.py
	$(PY) benchmarks/fit_step.py
	$(PY) benchmarks/raw_fit.py
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/shapespace_training.py
	$(PY) benchmarks/shapegf.py
	$(PY) benchmarks/cloud_metrics.py
	$(PY) benchmarks/completion.py
	$(PY) benchmarks/deepsdf_parts.py
	$(PY) benchmarks/normals.py

# Re-resolve the lock file from pyproject (run by a maintainer, never by CI).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	PIP_CONSTRAINT= .venv-lock/bin/pip install --quiet torch==2.13.0 -e '.[dev,bench]'
	( echo '# Exact versions for dev and CI; used as PIP_CONSTRAINT by the Makefile. `make lock` rewrites it.'; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -v '^isofield' | grep -v '^setuptools==' ) > $(LOCK)
	rm -rf .venv-lock

clean-venv:
	rm -rf $(VENV)
