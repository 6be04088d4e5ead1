"""Train once, evaluate many: the experts an AdaMix run keeps, and `adamix-evaluate` under every inference rule."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from adamix_runner.cli.evaluate import main
from adamix_runner.evaluate import evaluate_run
from adamix_runner.run import run
from tests.conftest import FIXTURES

# No evaluation during training: the eval generator is then fresh at the final evaluation, as in adamix-evaluate.
TINY = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "train.max_steps=3",
    "train.batch_size=8",
    "train.eval_every_epoch=false",
    "peft.share=none",  # both projections hold experts: fixed routing and the ensemble touch both
]


def _evaluation(folder, name: str) -> dict:
    return json.loads((folder / "evaluations" / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The same training under each inference rule: routing in training does not depend on it."""
    from adamix_runner.config.compose import compose_config

    root = tmp_path_factory.mktemp("runs")
    rules = {"merge": [], "random": [], "fixed": ["peft.fixed_expert=1"], "ensemble": []}
    return {
        rule: run(compose_config(f"output_root={root}", "logger=none", *TINY, f"peft.inference={rule}", *extra))
        for rule, extra in rules.items()
    }


def test_a_merged_run_keeps_its_experts_and_their_mean_is_the_merged_adapter(trained):
    adapter = trained["merge"].run_dir / "adapter"
    experts = load_file(adapter / "experts.safetensors")
    merged = load_file(adapter / "adaptation.safetensors")
    unmerged_run = load_file(trained["fixed"].run_dir / "adapter" / "adaptation.safetensors")
    assert set(experts) == set(merged) == set(unmerged_run)
    for name, tensor in experts.items():
        assert tensor.shape[0] == 4
        assert torch.equal(
            tensor, unmerged_run[name]
        )  # the run's final experts, as a run that never merged saved them
        torch.testing.assert_close(tensor.mean(0, keepdim=True), merged[name], rtol=0, atol=1e-7)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["merged"], config["num_experts"], config["experts"]) == (True, 1, 4)
    assert not (trained["fixed"].run_dir / "adapter" / "experts.safetensors").exists()


def test_each_rule_equals_the_run_trained_under_it_and_nothing_is_redone(trained):
    folder = trained["merge"].run_dir
    main([str(folder), "--rules", "merge,random,fixed,ensemble", "--random-eval-seeds", "2", "--fixed-expert", "1"])
    names = {p.stem for p in (folder / "evaluations").glob("*.json")}
    assert names == {"merge", "random-seed0", "random-seed1", "fixed-expert1", "ensemble"}
    assert _evaluation(folder, "merge")["metrics"] == trained["merge"].record["metrics"]
    assert _evaluation(folder, "ensemble")["metrics"] == pytest.approx(trained["ensemble"].record["metrics"], abs=1e-6)
    assert _evaluation(folder, "fixed-expert1")["metrics"] == pytest.approx(
        trained["fixed"].record["metrics"], abs=1e-6
    )
    random0 = _evaluation(folder, "random-seed0")
    assert random0["metrics"] == pytest.approx(trained["random"].record["metrics"], abs=1e-6)
    assert (random0["rule"], random0["eval_seed"], random0["expert"]) == ("random", 0, None)
    assert random0["primary_metric"] == "validation/accuracy"
    # another evaluation seed routes differently (the loss moves), and reproducibly
    random1 = _evaluation(folder, "random-seed1")["metrics"]
    assert random1["validation/loss"] != random0["metrics"]["validation/loss"]
    (folder / "evaluations" / "random-seed1.json").unlink()
    assert evaluate_run(folder, ["random"], random_seeds=2) == [folder / "evaluations" / "random-seed1.json"]
    assert _evaluation(folder, "random-seed1")["metrics"] == random1
    assert evaluate_run(folder, ["merge", "random"], random_seeds=2) == []  # all present: nothing rebuilt


def test_the_experts_rule_evaluates_every_single_expert_of_an_unmerged_run(trained):
    folder = trained["fixed"].run_dir
    written = evaluate_run(folder, ["experts"])
    assert [p.name for p in written] == [f"fixed-expert{i}.json" for i in range(4)]
    assert _evaluation(folder, "fixed-expert1")["metrics"] == pytest.approx(trained["fixed"].record["metrics"])


def test_eval_only_under_another_rule_reads_the_kept_experts(trained, tmp_path):
    from adamix_runner.config.compose import compose_config

    adapter = trained["merge"].run_dir / "adapter"
    overrides = [*TINY, "eval_only=true", f"adapter_path={adapter}", "peft.inference=fixed", "peft.fixed_expert=1"]
    evaluated = run(compose_config(f"output_root={tmp_path}", "logger=none", *overrides))
    assert evaluated.record["metrics"] == pytest.approx(trained["fixed"].record["metrics"], abs=1e-6)


def test_runs_without_experts_or_not_adamix_are_refused_before_any_model_is_built(trained, tmp_path, capsys):
    no_experts = tmp_path / "no-experts"
    shutil.copytree(trained["merge"].run_dir, no_experts)
    (no_experts / "adapter" / "experts.safetensors").unlink()
    single = tmp_path / "single"
    shutil.copytree(trained["merge"].run_dir, single)
    config = single / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("method: adamix", "method: adapter"))
    for folder, message in [
        (no_experts, "keeps no unmerged experts"),
        (single, "is a peft=adapter run; inference rules apply to AdaMix runs only"),
        (tmp_path, "is not a run folder"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main([str(folder)])
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(trained["merge"].run_dir), "--rules", "merge,vote"])
    assert "each rule must be one of merge, random, fixed, ensemble, experts" in capsys.readouterr().err


@pytest.mark.slow
def test_generation_runs_keep_each_rules_predictions_apart(compose_run):
    e2e = ["task=e2e", f"task.data_dir={FIXTURES / 'nlg' / 'e2e'}", "model=tiny-gpt2", "peft=adamix_lora"]
    fast = ["train.max_steps=2", "train.batch_size=4", "train.eval_every_epoch=false", "task.metrics=[bleu]"]
    trained = run(compose_run(*e2e, *fast, "generation.num_beams=2", "generation.max_new_tokens=8"))
    folder = trained.run_dir
    own = (folder / "predictions" / "test.pred.txt").read_text()
    evaluate_run(folder, ["merge", "random"])
    assert _evaluation(folder, "merge")["metrics"] == trained.record["metrics"]
    assert (folder / "evaluations" / "merge" / "predictions" / "test.pred.txt").read_text() == own
    assert (folder / "evaluations" / "random-seed0" / "predictions" / "test.pred.txt").exists()
    assert (folder / "predictions" / "test.pred.txt").read_text() == own
    assert not (folder / "evaluations" / ".current").exists()


def test_random_seed0_equals_a_random_run_that_also_evaluated_every_epoch(tmp_path):
    """Every evaluation restarts the eval-time routing stream: the epoch-end evaluations (the default) do not shift
    the draws of the final one, so random-seed0.json is what the peft.inference=random run reported."""
    from adamix_runner.config.compose import compose_config

    overrides = [o for o in TINY if not o.startswith(("train.eval_every_epoch", "train.max_steps"))]
    cfg = compose_config(f"output_root={tmp_path}", "logger=none", *overrides, "train.max_steps=16",
                         "train.eval_every_epoch=true", "peft.inference=random")  # fmt: skip
    result = run(cfg)
    curve = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum("validation/loss" in row for row in curve) >= 2  # epoch-end evaluations before the final one
    evaluate_run(result.run_dir, ["random"])
    assert _evaluation(result.run_dir, "random-seed0")["metrics"] == result.record["metrics"]
