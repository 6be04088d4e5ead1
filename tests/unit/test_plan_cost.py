"""PLAN's cost model (tables/cost.py, lengths.py, throughput.py) against hand computations, its precision-specific
rates, the bench file it picks, and the longest-first order the sweeper submits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adamix_runner.config.compose import compose_config
from adamix_runner.tables import declaration, launch
from adamix_runner.tables.cost import expected_batch_max, weights
from adamix_runner.tables.plan import _cell_plan, make_plan
from adamix_runner.tables.throughput import precision, rate

A100_BF16 = 312e12 * 0.4  # the default rate of a bf16 paper profile
ROBERTA_LARGE = 24 * (4 * 1024 * 1024 + 2 * 1024 * 4096)  # 301,989,888 frozen weights a token meets


@pytest.fixture(scope="module")
def table1(tmp_path_factory):
    """The whole Table 1 plan (56 composed cells: ~40 s on the shared 2 cores, hence the slow marks)."""
    return make_plan("table1", "paper", None, [], tmp_path_factory.mktemp("bench"))


def _one_cell(table_id: str, name: str, bench: Path):
    """One cell's plan, composed as make_plan composes it (without composing the other cells)."""
    decl = declaration.load(table_id)
    cell = next(c for c in declaration.cells(decl, "paper") if c.name == name)
    return _cell_plan(decl, cell, declaration.seeds(decl, None), [], "gpu", bench)[0]


def test_table1_mnli_adamix_by_hand(tmp_path):
    """MNLI x AdaMix (dim 16, M 4) x RoBERTa-large, bf16 (the paper profile), one seed."""
    cell = _one_cell("table1", "adamix_adapter/mnli", tmp_path)
    trained = 24 * (1024 * 16 + 16 * 1024)  # one expert of the one adapter per layer: 786,432
    assert (cell.weights.frozen, cell.weights.trained) == (ROBERTA_LARGE, trained)
    assert (cell.samples, cell.views, cell.tokens.train, cell.tokens.how) == (392_702 * 20, 2, 95, "stated")
    per_token = 4 * ROBERTA_LARGE + 6 * trained + 3 * 4 * 95 * 1024 * 24  # 1.2407 GFLOP (PLAN before: 1.812)
    assert cell.weights.train_per_token(95) == per_token == 1_240_694_784
    train = 7_854_040 * 2 * 95 * per_token
    forward = 2 * (ROBERTA_LARGE + trained) + 4 * 95 * 1024 * 24
    evaluation = 21 * (9_815 + 9_832) * 95 * forward  # 20 epoch ends + the final evaluation, matched + mismatched
    assert cell.eval_passes == 21 and cell.eval_samples == 19_647
    assert cell.rate.flops_per_s == A100_BF16 and "bf16" in cell.rate.source
    hours = (train + evaluation) / A100_BF16 / 3600
    assert hours == pytest.approx(4.17, abs=0.01)  # PLAN before this model: 8.10 h at 6N, 128 tokens
    assert cell.hours() == pytest.approx(3 * hours, rel=1e-12)


@pytest.mark.slow
def test_full_fine_tuning_costs_6n_and_the_table_total(table1):
    full = next(c for c in table1.cells if c.cell.name == "full/mnli")
    assert full.weights.frozen == 0 and full.weights.trained == ROBERTA_LARGE
    assert full.views == 1 and full.weights.train_per_token(95) == 6 * ROBERTA_LARGE + 12 * 95 * 1024 * 24
    assert table1.runs() == 168 and table1.hours() == pytest.approx(109.2, abs=0.1)


def test_table3_e2e_adamix_adapter_by_hand(tmp_path):
    """E2E x AdaMix adapter (dim 8, M 8) x GPT-2 medium, one seed: training, then one beam search of the 630 test
    inputs x 10 beams x 64 new tokens; the tied LM head is a frozen matmul every token goes through."""
    cell = _one_cell("table3", "adamix_adapter/e2e", tmp_path)
    frozen = ROBERTA_LARGE + 1024 * 50_257  # GPT-2 medium's blocks have RoBERTa-large's shapes, plus the LM head
    trained = 24 * (1024 * 8 + 8 * 1024)
    assert (cell.weights.frozen, cell.weights.trained) == (frozen, trained)
    assert (cell.samples, cell.views, cell.tokens.train, cell.eval_passes) == (42_061 * 20, 2, 80, 1)
    assert cell.beam == (630, 10, 64) and cell.eval_samples == 0
    train = 841_220 * 2 * 80 * (4 * frozen + 6 * trained + 12 * 80 * 1024 * 24)
    decode = 630 * 10 * 64 * (2 * (frozen + trained) + 4 * (80 + 32) * 1024 * 24)
    hours = (train + decode) / A100_BF16 / 3600
    assert hours == pytest.approx(0.432, abs=0.001)  # PLAN before: 22.1 / 9 = 2.46 h at 6N, 512 tokens
    assert cell.hours() == pytest.approx(3 * hours, rel=1e-12)


def test_the_rate_follows_the_runs_precision(tmp_path):
    def shown(*overrides):
        cfg = compose_config("model=roberta-large", *overrides)
        return precision(cfg), rate(cfg, "gpu", 1, tmp_path).flops_per_s

    assert shown() == ("fp32", pytest.approx(19.5e12 * 0.4))
    assert shown("train.mixed_precision=bf16") == ("bf16", A100_BF16)
    assert shown("train.mixed_precision=fp16") == ("fp16", A100_BF16)


def test_a_bench_file_of_another_precision_or_variant_is_not_used(tmp_path):
    cfg = compose_config("model=roberta-large", "train.mixed_precision=bf16", "peft=adapter")
    options = {"batch": 64, "seq_len": 128}
    for name, tflops in (("roberta-large-cuda-fp32-20270101-000000", 50.0), ("roberta-large-cuda-bf16-20260101-0", 1)):
        record = {"options": options, "train": {"model_tflops": {"single adapter": tflops}}}
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    measured = rate(cfg, "gpu", 1, tmp_path)
    assert measured.flops_per_s == 1e12 and "roberta-large-cuda-bf16" in measured.source
    full = compose_config("model=roberta-large", "train.mixed_precision=bf16", "peft=full")
    assert rate(full, "gpu", 1, tmp_path).source.startswith("default")  # no full fine-tuning measured


def test_expected_longest_row_of_a_random_batch():
    assert expected_batch_max([1, 2], 2) == pytest.approx(1 * 0.25 + 2 * 0.75)
    assert expected_batch_max([7] * 5, 64) == 7
    assert expected_batch_max(list(range(1, 101)), 1) == pytest.approx(50.5)


def test_prefix_tokens_enter_attention_and_the_prefix_encoder_does_not_count_per_token():
    base = weights(compose_config("model=roberta-large", "peft=lora", "model.pretrained=false"))
    prefix = weights(compose_config("model=roberta-large", "peft=prefix", "model.pretrained=false"))
    assert prefix.frozen == base.frozen == ROBERTA_LARGE and prefix.trained == 0


@pytest.mark.slow
def test_the_sweeper_gets_the_longest_cells_first(table1, monkeypatch):
    monkeypatch.setattr(launch, "tool", lambda name: name)
    order = table1.longest_first()
    names = [table1.cells[i].cell.name for i in order]
    assert names[:2] == ["adamix_adapter/mnli", "adamix_adapter/qqp"] and sorted(order) == list(range(56))
    seconds = [table1.cells[i].run_flops() / table1.cells[i].rate.flops_per_s for i in order]
    assert seconds == sorted(seconds, reverse=True)
    assert f"hydra.sweeper.order=[{','.join(map(str, order))}]" in launch.train_command(table1, "slurm", [])


def test_the_sweeper_submits_in_the_given_order():
    from hydra_plugins.adamix_table_sweeper.table_sweeper import TableSweeper

    class Recorder:
        def launch(self, jobs, initial_job_idx):
            self.jobs = jobs
            return []

    sweeper = TableSweeper("table3", "smoke", 1, None, order=[2, 0, 1])
    sweeper.config = compose_config("hydra.sweep.dir=/tmp/adamix-order-test", with_hydra=True)
    sweeper.launcher = Recorder()
    sweeper.sweep([])
    assert [job[0] for job in sweeper.launcher.jobs] == ["task=e2e"] * 3
    assert [next(o for o in job if o.startswith("experiment=")) for job in sweeper.launcher.jobs] == [
        "experiment=e2e_gpt2_medium_adamix_lora",
        "experiment=e2e_gpt2_medium_lora",
        "experiment=e2e_gpt2_medium_adamix",
    ]
    with pytest.raises(ValueError, match="must list each of the 3 cells once"):
        TableSweeper("table3", "smoke", 1, None, order=[0, 0, 1]).sweep([])
