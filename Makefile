# Two commands set up a fresh machine: `make demo` and `make test`. Both create .venv once
# (idempotent: the stamp file is rebuilt only when setup.cfg or pyproject.toml change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE := 1

.PHONY: venv demo test test-all lint format bench study clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cover_tf.train --config configs/demo.yaml --workdir runs/demo
	$(PY) -m cover_tf.evaluate --workdir runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests datasets

test-all: $(STAMP)
	$(PY) -m pytest -q tests datasets

lint: $(STAMP)
	$(VENV)/bin/ruff check cover_tf datasets export benchmarks tests
	$(VENV)/bin/ruff format --check cover_tf datasets export benchmarks tests

format: $(STAMP)
	$(VENV)/bin/ruff check --fix cover_tf datasets export benchmarks tests
	$(VENV)/bin/ruff format cover_tf datasets export benchmarks tests

bench: $(STAMP)
	$(PY) benchmarks/throughput.py --peer --markdown runs/throughput.md | tee runs/throughput.jsonl
	$(PY) benchmarks/input_pipeline.py --out runs/input_pipeline.jsonl

# The embedded co-training study (README, "Results on the embedded benchmark"): 3 seeds, controls,
# transfer; under an hour on 2 quiet cores. Not run by CI.
study: $(STAMP)
	$(PY) benchmarks/cotrain.py --out runs/study

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
