# Two commands on a fresh machine with Python 3.11: `make run` (serve) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint bench clean

install: $(STAMP)

# torch is pinned first: 2.13.0 is a CPU wheel available locally; an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: install
	$(BIN)/rag serve

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check app ingestion retrieval generation bench tests
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.embedding_backends
	$(BIN)/python -m bench.scifact_http
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.speed

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
