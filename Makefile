# `make demo` and `make test` set everything up themselves (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ORIG_VENV := .venv-original
ORIG_STAMP := $(ORIG_VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint setup original bench conformance conformance-original clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,runtime]'
	touch $@

# The original implementation (cartonml-nightly) lives in its own venv: interop tests drive it.
original: $(ORIG_STAMP)

$(ORIG_STAMP): constraints-original.txt
	test -x $(ORIG_VENV)/bin/python || $(PYTHON) -m venv $(ORIG_VENV)
	$(ORIG_VENV)/bin/python -m pip install --quiet -c constraints-original.txt cartonml-nightly
	touch $@

demo: $(STAMP)
	$(PY) scripts/demo.py

# ruff (configured in pyproject.toml) runs first: a lint finding fails the build like a test.
lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) $(ORIG_STAMP) lint
	CARTON_ORIGINAL_PYTHON=$(CURDIR)/$(ORIG_VENV)/bin/python CARTON_REQUIRE_ORIGINAL=1 \
		$(PY) -m pytest -q -n $(PYTEST_WORKERS) tests

# The conformance suite on its own (make test runs it too, through tests/conformance/test_conformance.py).
conformance: $(STAMP)
	$(PY) -m carton_conformance run --adapter builtin --known-failures carton_conformance/known-failures/builtin.toml \
		--strict-known-failures --report conformance-report.json --junit conformance-junit.xml

# The original implementation's results (published in carton_conformance/README.md).
conformance-original: $(STAMP) $(ORIG_STAMP)
	$(PY) -m carton_conformance run --adapter original --known-failures carton_conformance/known-failures/original.toml --markdown

bench: $(STAMP)
	$(PY) bench/format_bench.py
	$(PY) bench/runtime_bench.py

clean:
	rm -rf $(VENV) $(ORIG_VENV) build *.egg-info .pytest_cache .hypothesis demo-out conformance-report.json conformance-junit.xml
