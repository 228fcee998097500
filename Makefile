# `make demo` and `make test` set up a fresh machine: both create .venv once. `make demo`
# installs the runtime set only (`pip install -e .`); `make test` adds the test extras
# (`.[test]`: torch, transformers, jax, ...) to the same venv, so a demo venv upgrades to a test
# venv. Each stamp is remade when setup.cfg or pyproject.toml change.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
UV := uv==0.13.9
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE := 1
# pytest-xdist workers: much of a test is single-threaded Python (TF import, tracing, CLI
# subprocesses), so two workers keep 2 cores busier than one; whole files go to one worker
# (`loadfile`) so a file's fixtures are built once.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Where `make bench` appends its result files; `make bench BENCH_RESULTS=benchmarks/results`
# adds them to the data that `make report` renders.
BENCH_RESULTS ?= runs/results

.PHONY: venv demo test test-all test-slow lint format bench report study clean

venv: $(RUNTIME_STAMP)

# The runtime set goes in with uv (parallel downloads). No bytecode is compiled up front
# (`--compile-bytecode` would compile every module of every package, most never imported); each
# module is compiled when a command first imports it and kept in the venv, so the make targets
# write bytecode even where the environment sets PYTHONDONTWRITEBYTECODE (else every process
# would recompile TensorFlow's imports).
# The test extras go in with pip, which honours the machine's pip.conf (where a local index or
# wheel directory provides torch's CPU build).
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

# The `slow` tests alone (minutes: whole trainings, CLI round trips); `.ci/run` runs them after
# `make test`.
test-slow: $(TEST_STAMP)
	$(PYTEST) -m slow tests datasets

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check cover_tf datasets export benchmarks tests
	$(VENV)/bin/ruff format --check cover_tf datasets export benchmarks tests

format: $(TEST_STAMP)
	$(VENV)/bin/ruff check --fix cover_tf datasets export benchmarks tests
	$(VENV)/bin/ruff format cover_tf datasets export benchmarks tests

# The CPU benchmarks beside the HF TimeSformer peer (benchmarks/README.md; a quiet machine, an
# hour or more): training and inference clips/s, the serving signature, the input pipeline. JSON
# lines in runs/, also appended to the machine's files in $(BENCH_RESULTS). Ends with an error
# where the peer cannot run (torch or transformers missing: the test extras install them).
bench: $(TEST_STAMP)
	mkdir -p runs
	$(PY) benchmarks/throughput.py --peer --peer-compile --markdown runs/throughput.md \
		--results-dir $(BENCH_RESULTS) > runs/throughput.jsonl
	$(PY) benchmarks/serving_throughput.py --peer-from runs/throughput.jsonl \
		--results-dir $(BENCH_RESULTS) > runs/serving.jsonl
	$(PY) benchmarks/input_pipeline.py --out runs/input_pipeline.jsonl \
		--results-dir $(BENCH_RESULTS)

# docs/performance.md and docs/results.md, written from the files in benchmarks/results/.
report: $(RUNTIME_STAMP)
	$(PY) benchmarks/report.py

# The embedded co-training study: 3 seeds, controls, transfer; about an hour on 2 cores. Writes
# runs/study/study.{json,md,png}; not run by CI.
study: $(TEST_STAMP)
	$(PY) benchmarks/cotrain.py --out runs/study

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
