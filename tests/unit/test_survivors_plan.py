"""PLAN behaviours that mutation testing (`make mutate`, docs/TESTING.md) found unpinned by the fast tests: the
order the sweeper submits cells in (the longest run in seconds first, FLOPs over each cell's own rate), the
evaluations of an inference table that does not say how many random-routing seeds it evaluates, the output root of a
table with nothing to run, the planned profile reaching the runs and the report, and the evaluations of a run that
evaluates every N optimizer steps, the hint for hydra.launcher.* keys given without a launcher, and the evaluation
rows and beam-search inputs of a cell (a task without a known size, data.max_eval_samples, a generation task without
a separate count of inputs, evaluations every N steps); the samples a run trains on (max_steps batches, K few-shot rows
per epoch)."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.tables import declaration, sizes
from adamix_runner.tables.cli import render
from adamix_runner.tables.launch import report_command, train_command
from adamix_runner.tables.plan import _cell_plan, eval_passes, evaluation_files, make_plan, training_samples

TABLE = {
    "id": "order",
    "title": "three cells of unequal length",
    "kind": "grid",
    "profiles": {"paper": {"model": "minilm", "device": "cpu"}, "smoke": {"model": "minilm"}},
    "tasks": ["polarity"],
    "token_length": {"polarity": {"value": 53, "source": "stated, so that nothing is tokenized"}},
    "common": ["data.max_train_samples=400"],
    "rows": [
        {"id": "adamix_e20", "overrides": ["peft=adamix", "train.epochs=20"], "match": {"peft.method": "adamix"}},
        {"id": "adapter_e2", "overrides": ["peft=adapter", "train.epochs=2"], "match": {"peft.method": "adapter"}},
        {"id": "adapter_e20", "overrides": ["peft=adapter", "train.epochs=20"], "match": {"peft.method": "adapter"}},
    ],
}


def _plan(table: dict, tmp_path, monkeypatch, bench):
    OmegaConf.save(OmegaConf.create(table), tmp_path / f"{table['id']}.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    return make_plan(table["id"], "paper", 1, [f"output_root={tmp_path}"], bench)


def test_the_longest_run_in_seconds_goes_first_each_cell_at_its_own_rate(tmp_path, monkeypatch):
    """A bench file makes the fused two-view AdaMix step fast (100 TFLOP/s): the AdaMix cell, which computes the
    most FLOPs, then takes the fewest seconds and goes last; the adapters keep the 65.5 GFLOP/s default."""
    bench = tmp_path / "bench"
    bench.mkdir()
    record = {
        "options": {"batch": 16, "seq_len": 64},
        "train": {"model_tflops": {"AdaMix, fused 2B consistency": 100}},
    }
    (bench / "minilm-cpu-fp32-20260101-000000.json").write_text(json.dumps(record))
    plan = _plan(TABLE, tmp_path, monkeypatch, bench)
    flops = [cell.run_flops() for cell in plan.cells]
    assert flops[0] > flops[2] > flops[1]  # two views x 20 epochs, one view x 20, one view x 2
    assert plan.longest_first() == [2, 1, 0]
    seconds = [plan.cells[i].run_flops() / plan.cells[i].rate.flops_per_s for i in (2, 1, 0)]
    assert seconds == sorted(seconds, reverse=True)


def test_prefix_tokens_are_keys_every_training_and_evaluation_token_attends_to(tmp_path, monkeypatch):
    """Prefix-tuning (length 10) on MiniLM (6 layers, hidden 384): attention per token grows with width + 10."""
    table = {**TABLE, "id": "prefix", "common": [*TABLE["common"], "train.epochs=2", "train.eval_every_epoch=false"]}
    table["rows"] = [{"id": "prefix", "overrides": ["peft=prefix"], "match": {"peft.method": "prefix"}}]
    cell = _plan(table, tmp_path, monkeypatch, tmp_path / "bench").cells[0]
    assert (cell.prefix, cell.samples, cell.views, cell.eval_samples) == (10, 800, 1, 800)
    width, eval_width, frozen, trained = cell.tokens.train, cell.tokens.eval, cell.weights.frozen, cell.weights.trained
    train = 800 * width * (4 * frozen + 6 * trained + 12 * (width + 10) * 384 * 6)
    forward = 800 * eval_width * (2 * (frozen + trained) + 4 * (eval_width + 10) * 384 * 6)
    assert cell.train_flops() == pytest.approx(train, rel=1e-12)
    assert cell.eval_flops() == pytest.approx(forward, rel=1e-12)


def test_an_inference_table_without_random_eval_seeds_reads_one_random_evaluation():
    decl = OmegaConf.create({"rules": ["random", "merge"]})  # adamix-table passes --random-eval-seeds 1 then
    assert evaluation_files(decl, 4) == ["random-seed0", "merge"]


def test_a_profile_without_a_device_plans_the_paper_on_a_gpu_and_the_smoke_run_on_the_cpu(tmp_path, monkeypatch):
    table = {**TABLE, "id": "nodevice", "profiles": {"paper": {"model": "minilm"}, "smoke": {"model": "minilm"}}}
    table["rows"] = TABLE["rows"][1:2]
    OmegaConf.save(OmegaConf.create(table), tmp_path / "nodevice.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    paper = make_plan("nodevice", "paper", 1, [f"output_root={tmp_path}"], tmp_path / "bench")
    assert paper.device == "gpu" and "A100" in paper.rates()[0]
    smoke = make_plan("nodevice", "smoke", 1, [f"output_root={tmp_path}"], tmp_path / "bench")
    assert smoke.device == "cpu" and smoke.rates()[0].startswith("default 65.5 GFLOP/s")


def test_a_table_with_nothing_to_run_plans_no_cell_under_its_profiles_output_root(tmp_path, monkeypatch):
    """Every row quoted from the paper (`not_run`): no cell, and PLAN still names where the runs would land."""
    paper = {"model": "minilm", "device": "cpu", "output_root": str(tmp_path / "quoted_runs")}
    table = {**TABLE, "id": "quoted", "profiles": {"paper": paper}, "rows": [{"id": "paper", "not_run": "quoted"}]}
    OmegaConf.save(OmegaConf.create(table), tmp_path / "quoted.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    plan = make_plan("quoted", "paper", 1, [], tmp_path / "bench")
    assert (plan.cells, plan.root) == ([], str(tmp_path / "quoted_runs"))


def test_the_profile_planned_is_the_one_the_runs_and_the_report_get(tmp_path, monkeypatch):
    OmegaConf.save(OmegaConf.create(TABLE), tmp_path / "order.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    plan = make_plan("order", "smoke", 2, [f"output_root={tmp_path}"], tmp_path / "bench")
    assert render(plan).splitlines()[0] == "order (smoke profile): three cells of unequal length"
    assert "hydra.sweeper.profile=smoke" in train_command(plan, "basic", [])
    assert report_command(plan)[1:] == ["table=order", f"runs={tmp_path}", "profile=smoke", "seeds=2"]


def _train(**keys) -> OmegaConf:
    train = {"batch_size": 4, "grad_accum": 2, "epochs": 3, "max_steps": 0, "eval_every_epoch": True}
    return OmegaConf.create({"train": {**train, "eval_every_steps": 0, **keys}})


def test_a_run_evaluates_at_each_epoch_end_every_n_optimizer_steps_and_once_at_the_end():
    """100 training samples at batch 4 x grad_accum 2 are 12 optimizer steps: every 5 steps is 2 evaluations."""
    assert eval_passes(_train(eval_every_steps=5), 100) == 3 + 2 + 1
    assert eval_passes(_train(eval_every_steps=5, eval_every_epoch=False), 100) == 2 + 1
    assert eval_passes(_train(eval_every_steps=5, max_steps=12), 100) == 2 + 1  # max_steps: no epoch ends
    assert eval_passes(_train(eval_every_steps=1), None) == 3 + 1  # an unknown data size adds no step evaluations
    assert eval_passes(_train(), 100) == 3 + 1
    assert isinstance(eval_passes(_train(eval_every_steps=5), 100), int)  # a count: whole evaluations


@pytest.mark.parametrize(
    ("extra", "launcher", "message"),
    [
        (
            ["hydra.launcher.partition=gpu"],
            [],
            "Could not override 'hydra.launcher.partition'. (hydra.launcher.* keys need a launcher: LAUNCHER=slurm, "
            "submitit_local or local_parallel)",
        ),
        (["train.no_such_key=1"], [], "Could not override 'train.no_such_key'."),
        (["hydra.launcher.nope=1"], ["hydra/launcher=submitit_local"], "Could not override 'hydra.launcher.nope'."),
    ],
)
def test_a_key_that_does_not_compose_is_one_line_with_the_launcher_hint_only_when_one_is_missing(
    tmp_path, monkeypatch, extra, launcher, message
):
    OmegaConf.save(OmegaConf.create(TABLE), tmp_path / "order.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    with pytest.raises(UserError) as refused:
        make_plan("order", "smoke", 1, extra, tmp_path / "bench", launcher)
    assert str(refused.value) == message


def _cell(table_id: str, name: str, extra: list[str], tmp_path):
    decl = declaration.load(table_id)
    cell = next(c for c in declaration.cells(decl, "paper") if c.name == name)
    return _cell_plan(decl, cell, [0], [f"output_root={tmp_path}", *extra], "gpu", tmp_path / "bench")[0]


def test_the_evaluation_rows_of_a_cell_follow_the_task_and_the_cap(tmp_path):
    assert (_cell("table1", "adamix_adapter/rte", [], tmp_path).eval_samples, sizes.EVAL["rte"]) == (277, 277)
    capped = _cell("table1", "adamix_adapter/rte", ["data.max_eval_samples=50"], tmp_path)
    assert (capped.eval_samples, capped.beam) == (50, (0, 0, 0))  # a classification cell runs no beam search
    assert _cell("table1", "adamix_adapter/rte", ["data.max_eval_samples=1000"], tmp_path).eval_samples == 277
    assert _cell("table1", "adamix_adapter/rte", ["task.name=unlisted"], tmp_path).eval_samples == 0  # size unknown
    assert (
        _cell(
            "table1", "adamix_adapter/rte", ["task.name=unlisted", "data.max_eval_samples=50"], tmp_path
        ).eval_samples
        == 50
    )


def test_a_generation_task_without_a_count_of_inputs_decodes_each_evaluation_row(tmp_path):
    """WebNLG is not in sizes.GENERATION_INPUTS: the beam search decodes all its evaluation rows, or the cap."""
    cell = _cell("table4", "adamix_adapter/webnlg", [], tmp_path)
    assert cell.beam[0] == sizes.EVAL["webnlg"] == 4_928 and cell.eval_samples == 0
    assert _cell("table4", "adamix_adapter/webnlg", ["data.max_eval_samples=100"], tmp_path).beam[0] == 100


def test_a_cells_evaluations_every_n_steps_count_its_optimizer_steps(tmp_path):
    cell = _cell("table1", "adamix_adapter/rte", ["train.eval_every_steps=100"], tmp_path)
    decl = declaration.load("table1")
    recipe = dict(o.split("=") for o in decl.recipes.rte.overrides)
    steps = cell.samples // int(recipe["train.batch_size"])  # grad_accum 1
    assert cell.samples == sizes.TRAIN["rte"] * int(recipe["train.epochs"])
    assert cell.eval_passes == int(recipe["train.epochs"]) + steps // 100 + 1


def test_a_run_trains_on_max_steps_global_batches_or_k_few_shot_rows_per_epoch():
    few = ["task=fewshot_sst2", "model=tiny-roberta", "fewshot.k=16", "train.batch_size=4", "train.grad_accum=2"]
    assert training_samples(compose_config(*few, "train.epochs=5", "train.max_steps=0")) == 16 * 5
    assert training_samples(compose_config(*few, "train.max_steps=1")) == 1 * 4 * 2
