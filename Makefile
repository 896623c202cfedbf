# `make demo` and `make test` set everything up themselves (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ORIG_VENV := .venv-original
ORIG_STAMP := $(ORIG_VENV)/.installed
PYTEST_WORKERS ?= 2
FUZZ_SECONDS ?= 600
FUZZ_TARGET ?= all

.PHONY: demo test lint setup original bench conformance conformance-original fuzz fuzz-smoke clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,runtime,hf,fsspec,s3,ray,spark,signing]'
	$(PY) -m pip install --quiet -c constraints.txt --only-binary=:all: atheris \
		|| echo "note: no atheris wheel for this Python; fuzzing and tests/test_fuzz_smoke.py are skipped"
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
		$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup tests

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
	$(PY) bench/hostile_bench.py
	$(PY) bench/load_bench.py
	$(PY) bench/pack_bench.py
	$(PY) bench/sign_bench.py
	$(PY) bench/isolation_bench.py
	$(PY) bench/export_bench.py
	$(PY) bench/scaleout_bench.py

# Fuzzing (fuzz/README.md): FUZZ_SECONDS in all, shared by the targets by weight (FUZZ_TARGET=all
# or a comma-separated list); corpora, crashes and summary.json under fuzz/out/ (git-ignored).
fuzz: $(STAMP)
	$(PY) -m fuzz run --target $(FUZZ_TARGET) --seconds $(FUZZ_SECONDS)

# The short fixed-seed run that make test also does (tests/test_fuzz_smoke.py), on its own.
fuzz-smoke: $(STAMP)
	$(PY) -m fuzz smoke --target $(FUZZ_TARGET) --out fuzz/out/smoke

clean:
	rm -rf $(VENV) $(ORIG_VENV) build *.egg-info .pytest_cache .hypothesis demo-out conformance-report.json conformance-junit.xml
