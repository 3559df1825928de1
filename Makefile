# Two commands matter: `make test` and `make demo`. Each one builds .venv first when needed.
# `make test-long` is `make test` with the long differential fuzz (3,000 programs instead of 300); CI runs it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CI adds the `torch` extra (EXTRAS=dev,examples,torch) so the differential tests run instead of skipping.
EXTRAS ?= dev,examples
# Numba's compiled kernels are cached here, inside the checkout, so a second run starts warm.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: test test-long demo lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Extra pytest arguments: make test PYTEST_ARGS="-x tests/test_ops.py"
PYTEST_ARGS ?=

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-long: $(STAMP)
	$(PY) -m pytest --fuzz=long $(PYTEST_ARGS)

# The vanilla vs LN-RNN comparison behind the README's char-RNN result: 8 runs (S = 1 and 5, clipping
# off and at norm 1), one seed, 2 at a time. Writes runs/demo; a second `make demo` continues (or
# reports) that experiment instead of overwriting it.
demo: $(STAMP)
	$(PY) examples/char_rnn_experiment.py --out runs/demo $(if $(wildcard runs/demo/experiment.json),--resume)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache .hypothesis *.egg-info
