# Set-up and everyday tasks. `make run` and `make test` work on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test lint typecheck check system-deps bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# certvigil's main job on its embedded defaults: brings up a set of loopback TLS
# endpoints (good, expired, self-signed, wrong host, ...) and scans them.
run: venv
	$(BIN)/certvigil demo

system-deps:
	bash scripts/install-system-deps.sh

test: venv system-deps
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

typecheck: venv
	$(BIN)/mypy src

check: lint typecheck test

bench: venv
	bash scripts/install-system-deps.sh bench
	$(BIN)/python bench/scan_throughput.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
