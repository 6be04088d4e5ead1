"""run_folder.py: the names that adamix-evaluate writes and PLAN and the report read (pinned to what the three
builders gave before they became one), a run's status, the not-a-run-folder refusal, atomic JSON, torch-free."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.report.declaration import Column
from adamix_runner.report.grid import rule_value
from adamix_runner.report.runs import RunRecord
from adamix_runner.run_folder import (
    ABSENT,
    Evaluation,
    evaluation_file,
    evaluation_name,
    evaluation_names,
    evaluations,
    load_config,
    read_json,
    status,
    write_json_atomic,
)


@pytest.mark.parametrize(
    ("rules", "num_experts", "seeds", "names"),
    [
        (["merge", "random", "fixed", "ensemble"], 4, 1, ["merge", "random-seed0", "fixed-expert0", "ensemble"]),
        (["merge", "random"], 4, 3, ["merge", "random-seed0", "random-seed1", "random-seed2"]),
        (
            ["merge", "experts", "random", "ensemble"],  # study_rules
            4,
            3,
            [
                "merge",
                *(f"fixed-expert{i}" for i in range(4)),
                "random-seed0",
                "random-seed1",
                "random-seed2",
                "ensemble",
            ],
        ),
        (["ensemble", "merge"], 2, 1, ["ensemble", "merge"]),  # the order given
        (["experts", "fixed"], 2, 1, ["fixed-expert0", "fixed-expert1"]),  # one file is one evaluation
    ],
)
def test_evaluation_names_are_the_files_adamix_evaluate_writes(rules, num_experts, seeds, names):
    assert evaluation_names(rules, num_experts, seeds) == names
    assert [e.name for e in evaluations(rules, num_experts, seeds)] == names


def test_an_evaluation_names_its_rule_seed_and_expert():
    assert evaluation_name("random", seed=2) == "random-seed2"
    assert evaluation_name("fixed", expert=3) == "fixed-expert3"
    assert evaluation_name("merge") == "merge" and evaluation_name("ensemble") == "ensemble"
    assert evaluations(["fixed"], 4, 1, fixed_expert=2) == [Evaluation("fixed", expert=2)]
    assert evaluations(["random"], 4, 2) == [Evaluation("random", eval_seed=0), Evaluation("random", eval_seed=1)]
    assert evaluation_file(Path("r/seed0"), "random-seed1") == Path("r/seed0/evaluations/random-seed1.json")


def _evaluated(accuracy: float) -> dict:
    return {"metrics": {"validation/accuracy": accuracy}}


def test_the_report_reads_each_rule_from_the_files_of_its_name():
    found = {"random-seed0": 0.5, "random-seed1": 0.7, "fixed-expert0": 0.1, "fixed-expert1": 0.3, "ensemble": 0.9}
    run = RunRecord(
        folder=Path("r"),
        status="completed",
        config={"peft": {"num_experts": 2, "inference": "merge"}},
        metrics={"validation/accuracy": 0.2},
        evaluations={name: _evaluated(value) for name, value in found.items()},
    )
    column = Column("mrpc", "mrpc", "validation/accuracy", "MRPC")
    assert rule_value("random", 2)(run, column) == pytest.approx(60.0)
    assert rule_value("random", None)(run, column) == pytest.approx(50.0)  # one evaluation seed by default
    assert rule_value("fixed", 2)(run, column) == pytest.approx(10.0)  # the first expert
    assert rule_value("experts", 2)(run, column) == pytest.approx(20.0)  # the mean of fixed-expert0, 1
    assert rule_value("ensemble", 2)(run, column) == pytest.approx(90.0)
    assert rule_value("merge", 2)(run, column) == pytest.approx(20.0)  # the run's own merged evaluation
    assert rule_value("random", 3)(run, column) == "not evaluated"  # random-seed2 is missing


def test_status_of_a_missing_an_unfinished_a_corrupt_and_a_completed_run(tmp_path):
    folder = tmp_path / "seed0"
    assert status(folder) == ABSENT == "absent"
    folder.mkdir()
    assert status(folder) == ABSENT
    (folder / "results.json").write_text(json.dumps({"config_hash": "abc"}))
    assert status(folder) == ABSENT
    (folder / "results.json").write_text('{"status": "comp')
    with pytest.raises(UserError, match=r"results\.json is not valid JSON .*; remove or restore it\."):
        status(folder)
    write_json_atomic(folder / "results.json", {"status": "completed"})
    assert status(folder) == "completed"


def test_a_folder_without_its_saved_config_is_not_a_run_folder(tmp_path):
    with pytest.raises(UserError) as refused:
        load_config(tmp_path)
    assert (
        str(refused.value) == f"{tmp_path} is not a run folder (no .hydra/config.yaml); pass outputs/runs/.../seed<k>."
    )
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create({"peft": {"method": "adamix"}}), tmp_path / ".hydra" / "config.yaml")
    assert load_config(tmp_path).peft.method == "adamix"


def test_json_is_written_whole_and_read_back(tmp_path):
    path = tmp_path / "deep" / "results.json"
    assert read_json(path) is None
    write_json_atomic(path, {"b": 1, "a": [1.5, None]})
    assert read_json(path) == {"a": [1.5, None], "b": 1}
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary sibling left


def test_the_run_folder_contract_imports_without_the_training_stack():
    code = (
        "import sys, adamix_runner.run_folder\n"
        "heavy = [m for m in ('torch', 'transformers', 'hydra', 'adamix_runner.config') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
