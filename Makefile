# Two commands for a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench install docker clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## start the service on :8090 with its built-in sandbox
	$(BIN)/python server.py --sandbox

test: $(STAMP)  ## lint (ruff, hadolint), then unit and integration tests (loopback only)
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m pytest

bench: $(STAMP)  ## wrk: service vs fake upstream vs ordinary proxy (BENCH_ARGS=--quick); not part of test
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

docker:  ## PYTHON_IMAGE=<mirror>/python:3.11-slim where Docker Hub is not reachable
	docker build --build-arg PYTHON_IMAGE=$${PYTHON_IMAGE:-python:3.11-slim} --build-arg BUILD_SHA=$$(git rev-parse --short HEAD 2>/dev/null || echo dev) -t connectors:latest .

clean:
	rm -rf $(VENV)
