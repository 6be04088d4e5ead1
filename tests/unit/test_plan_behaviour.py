"""PLAN's arithmetic beyond one cell (which runs train one or two views, samples under max_steps x grad_accum, the
evaluations an inference table still needs) and the declaration checks that stop a bad table before a launch."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.report import cli as report_cli
from adamix_runner.report import declaration as report_declaration
from adamix_runner.tables import declaration
from adamix_runner.tables.plan import evaluation_files, make_plan, training_samples, views


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["peft=adapter"], 1),  # consistency_weight 0: one forward pass
        (["peft=lora"], 1),
        (["peft=adamix"], 2),  # null: the official weight, the consistency pass doubles the work
        (["peft=adamix", "peft.consistency_weight=0.5"], 2),
        (["peft=adamix", "peft.consistency_weight=0"], 1),
        (["peft=adamix", "task=stsb"], 1),  # one-logit regression: its KL is zero, the pass is skipped
    ],
)
def test_views_are_two_only_when_the_consistency_pass_runs(overrides, expected):
    assert views(compose_config(*overrides)) == expected


def test_training_samples_count_max_steps_times_the_global_batch_else_capped_split_times_epochs():
    steps = compose_config("train.max_steps=10", "train.batch_size=4", "train.grad_accum=3", "train.epochs=99")
    assert training_samples(steps) == 10 * 4 * 3
    epochs = compose_config("task=mrpc", "train.epochs=2", "train.grad_accum=3")
    assert training_samples(epochs) == 3_668 * 2  # GLUE MRPC's train split, grad_accum changes nothing
    capped = compose_config("task=mrpc", "train.epochs=2", "data.max_train_samples=1000")
    assert training_samples(capped) == 1000 * 2


def test_the_evaluation_files_are_the_ones_adamix_evaluate_writes():
    from adamix_runner.run_folder import evaluations as planned

    for table_id in ("table7", "figure5", "study_rules"):
        decl = declaration.load(table_id)
        seeds = int(decl.get("random_eval_seeds", 1))
        written = [e.name for e in planned(list(decl.rules), 4, seeds, 0)]
        assert evaluation_files(decl, 4) == written, table_id


def _complete(plan, seeds=(0,)) -> None:
    for cell in plan.cells:
        for seed in seeds:
            (cell.folder / f"seed{seed}").mkdir(parents=True, exist_ok=True)
            (cell.folder / f"seed{seed}" / "results.json").write_text(json.dumps({"status": "completed"}))


def test_an_inference_table_plans_the_evaluations_left_until_they_are_written(tmp_path):
    def plan_now():
        return make_plan("study_rules", "smoke", 1, [f"output_root={tmp_path}"], tmp_path / "bench")

    plan = plan_now()
    training = plan.hours()
    assert training > 0 and plan.completed() == 0
    _complete(plan)
    plan = plan_now()
    assert plan.completed() == plan.runs() == 5
    names = evaluation_files(plan.decl, 4)
    assert {c.evaluations for c in plan.cells} == {len(names)} == {1 + 4 + 3 + 1}  # merge, experts, random, ensemble
    left = plan.hours()
    assert 0 < left < training  # trained: only the forward passes of the evaluations are left
    for cell in plan.cells:
        (cell.folder / "seed0" / "evaluations").mkdir()
        for name in names:
            (cell.folder / "seed0" / "evaluations" / f"{name}.json").write_text("{}")
    assert plan_now().hours() == 0


def test_a_grid_table_with_every_run_completed_has_nothing_left(tmp_path):
    plan = make_plan("demo", "smoke", 2, [f"output_root={tmp_path}"], tmp_path / "bench")
    full = plan.hours()
    _complete(plan, seeds=(0,))
    assert (plan.refresh().completed(), plan.runs()) == (12, 24)
    assert plan.hours() == pytest.approx(full / 2)  # every cell's runs cost the same per seed
    _complete(plan, seeds=(1,))
    assert plan.refresh().hours() == 0


GRID = {
    "id": "good",
    "title": "a table",
    "kind": "grid",
    "profiles": {"paper": {"model": "minilm"}, "smoke": {"model": "minilm"}},
    "tasks": ["polarity"],
    "rows": [{"id": "adapter", "overrides": ["peft=adapter"], "match": {"peft.method": "adapter"}}],
}


def _bad(**changes) -> dict:
    table = json.loads(json.dumps(GRID))
    for key, value in changes.items():
        if value is None:
            table.pop(key)
        else:
            table[key] = value
    return table


BAD_DECLARATIONS = [
    (_bad(title=None), "missing key 'title'"),
    (_bad(id="other"), "id 'other' differs from the file name"),
    (_bad(kind="matrix"), "kind must be one of ('grid', 'inference'), not 'matrix'"),
    (_bad(profiles={"gpu": {}, "paper": {}}), "profiles must be among ('paper', 'smoke')"),
    (_bad(profiles={"smoke": {}}), "needs a paper profile"),
    (_bad(rows=[*GRID["rows"], *GRID["rows"]]), "row ids must be unique"),
    (_bad(recipes={"rte": {"overrides": []}}), "recipe for 'rte', which is not among tasks ['polarity']"),
    (_bad(rows=[{"id": "a", "overrides": [], "not_run": "x"}]), "row 'a' needs overrides or not_run (one)"),
    (_bad(rows=[{"id": "a"}]), "row 'a' needs overrides or not_run (one)"),
    (_bad(kind="inference"), "inference needs from, rows_from, rules"),
    (
        _bad(kind="inference", rules=["merge"], rows_from=["adapter"], rows=None) | {"from": "demo"},
        "missing key 'rows'",
    ),
    (
        _bad(kind="inference", rules=["merge"], rows_from=["adapter"], rows=[{"id": "r", "rule": "random"}])
        | {"from": "demo"},
        "row 'r' needs a rule among ['merge']",
    ),
]


@pytest.mark.parametrize(("table", "message"), BAD_DECLARATIONS)
def test_a_bad_declaration_is_refused_with_what_is_wrong(table, message, tmp_path, monkeypatch):
    OmegaConf.save(OmegaConf.create(table), tmp_path / "good.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    with pytest.raises(UserError) as error:
        declaration.load("good")
    assert str(error.value) == f"conf/table/good.yaml: {message}"


@pytest.mark.parametrize(("table", "message"), BAD_DECLARATIONS)
def test_the_report_refuses_what_adamix_table_refuses_with_the_same_message(table, message, tmp_path, monkeypatch):
    """One reader, one set of checks: adamix-report's load is adamix-table's (an inference table without `rows`
    was once accepted by the report alone)."""
    OmegaConf.save(OmegaConf.create(table), tmp_path / "good.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    with pytest.raises(UserError) as error:
        report_declaration.load("good")
    assert str(error.value) == f"conf/table/good.yaml: {message}"
    with pytest.raises(UserError) as error:
        report_cli.report(["table=good", f"runs={tmp_path}"])
    assert str(error.value) == f"conf/table/good.yaml: {message}"


def test_the_good_declaration_loads_through_both_readers(tmp_path, monkeypatch):
    OmegaConf.save(OmegaConf.create(GRID), tmp_path / "good.yaml")
    monkeypatch.setattr(declaration, "TABLE_DIR", tmp_path)
    assert OmegaConf.to_container(declaration.load("good")) == report_declaration.load("good") == GRID


def test_the_good_declaration_loads():
    assert declaration.cells(OmegaConf.create(GRID), "smoke")[0].overrides[:2] == ("task=polarity", "model=minilm")
