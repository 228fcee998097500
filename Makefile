# Two commands set up a fresh machine: `make demo` and `make test`. Both create .venv once.
# `make demo` installs the runtime set only (`pip install -e .`); `make test` adds the test
# extras (`.[test]`: torch, transformers, jax, ...) to the same venv, so a demo venv upgrades to
# a test venv. Each stamp is remade when setup.cfg or pyproject.toml change.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
UV := uv==0.13.9
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE := 1
# pytest-xdist workers: much of a test is single-threaded Python (TF import, tracing, CLI
# subprocesses), so two workers on 2 cores took 14 min 28 s where one took 18 min 37 s
# (README "Set-up"); whole files go to one worker (`loadfile`) so a file's fixtures are built once.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

.PHONY: venv demo test test-all test-slow lint format bench study clean

venv: $(RUNTIME_STAMP)

# The runtime set goes in with uv (parallel downloads: ~7 s from a warm cache, README "Set-up").
# No bytecode is compiled up front (`--compile-bytecode` compiled every module of every package:
# `make venv` 41.2 s against 13.9 s on 2 cores, uv's cache warm); each module is compiled when a
# command first imports it and kept in the venv, so the make targets write bytecode even where
# the environment sets PYTHONDONTWRITEBYTECODE (without it, every process would recompile
# TensorFlow's imports: ~8 s).
# The test extras stay with pip, which honours this machine's pip.conf (torch 2.13.0's CPU build
# is a file on its disk).
unexport PYTHONDONTWRITEBYTECODE
$(RUNTIME_STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(UV)
	$(PY) -m uv pip install --python $(PY) -q -e .
	touch $@

$(TEST_STAMP): $(RUNTIME_STAMP)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(RUNTIME_STAMP)
	$(PY) -m cover_tf.train --config configs/demo.yaml --workdir runs/demo

test: $(TEST_STAMP)
	$(PYTEST) -m "not slow" tests datasets

test-all: $(TEST_STAMP)
	$(PYTEST) tests datasets

# The `slow` tests alone (~8 min on 2 cores); `.ci/run` runs them after `make test`.
test-slow: $(TEST_STAMP)
	$(PYTEST) -m slow tests datasets

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check cover_tf datasets export benchmarks tests
	$(VENV)/bin/ruff format --check cover_tf datasets export benchmarks tests

format: $(TEST_STAMP)
	$(VENV)/bin/ruff check --fix cover_tf datasets export benchmarks tests
	$(VENV)/bin/ruff format cover_tf datasets export benchmarks tests

bench: $(TEST_STAMP)
	$(PY) benchmarks/throughput.py --peer --markdown runs/throughput.md | tee runs/throughput.jsonl
	$(PY) benchmarks/input_pipeline.py --out runs/input_pipeline.jsonl

# The embedded co-training study (README, "Results on the embedded benchmark"): 3 seeds, controls,
# transfer; under an hour on 2 quiet cores. Not run by CI.
study: $(TEST_STAMP)
	$(PY) benchmarks/cotrain.py --out runs/study

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
