# One entry point for people and CI: `make test` builds the virtual environment when needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test test-fast test-stack lint bench serve clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# mypy first: the product packages type-check ([tool.mypy] in pyproject.toml), then the tests.
test: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest -m "not slow"

# The compose stack built and run with Docker (docs/deploy.md), with its build and start timings.
test-stack: $(STAMP)
	$(PY) -m pytest tests/deploy/test_stack.py -s

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Redis, one worker and the API on this machine until Ctrl-C (scripts/serve.py). Settings:
# SERVE_HOST, SERVE_PORT (8000), SERVE_REDIS_PORT, SERVE_DIR (.serve), SRBVAE_WORKER_*, SRBVAE_API_*.
serve: $(STAMP)
	$(PY) -m scripts.serve

bench: $(STAMP)
	$(PY) -m bench.model_step
	$(PY) -m bench.worker_batching
	$(PY) -m bench.request_cost

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
