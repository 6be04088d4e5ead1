"""run(cfg) end to end on tiny models and the shipped GLUE-schema fixtures: numbers, files, reload, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adamix_runner.build import build_model
from adamix_runner.run import run
from adamix_runner.tracking import JsonlTracker
from tests.conftest import FIXTURES

MRPC = (f"task=mrpc task.data_dir={FIXTURES / 'glue' / 'mrpc'}").split()
SHORT = ["train.max_steps=6", "train.batch_size=8", "train.log_every_steps=2"]


def _jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _train_losses(folder: Path) -> list[float]:
    return [row["train/loss"] for row in _jsonl(folder) if "train/loss" in row]


def test_seeded_run_pins_losses_and_writes_the_run_folder(compose_run):
    result = run(compose_run(*MRPC, "model=tiny-bert", *SHORT))
    folder = result.run_dir
    assert result.status == "completed"
    assert _train_losses(folder) == pytest.approx([0.6942489, 0.6949279, 0.6942058], abs=1e-6)
    record = json.loads((folder / "results.json").read_text())
    assert record["status"] == "completed"
    assert (record["task"], record["model"], record["peft"], record["seed"]) == ("mrpc", "tiny-bert", "adamix", 0)
    assert set(record["metrics"]) == {"validation/loss", "validation/accuracy", "validation/f1"}
    assert record["primary_metric"] == "validation/accuracy"
    # tiny-bert: hidden 32, 2 layers, r=16: 2 * ((32*16 + 16) + (16*32 + 32)) merged adapter parameters
    assert record["params"]["inference"] == 2 * (528 + 544)
    # training holds 4 down experts and 1 shared up expert per layer, plus the 32*2+2 head
    assert record["params"]["trainable"] == 2 * (4 * 528 + 544) + 66
    assert record["config"]["peft"]["num_experts"] == 4
    assert (folder / ".hydra" / "config.yaml").exists()
    assert not (folder / "checkpoint").exists()
    adapter = folder / "adapter"
    weights = load_file(adapter / "adaptation.safetensors")
    assert {tuple(t.shape) for t in weights.values()} == {(1, 16, 32), (1, 16), (1, 32, 16), (1, 32)}
    assert set(load_file(adapter / "head.safetensors")) == {"classifier.weight", "classifier.bias"}
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["merged"], config["num_experts"], config["task"]["num_labels"]) == (True, 1, 2)
    final = [row for row in _jsonl(folder) if row["step"] == -1]
    assert final[0]["final/validation/accuracy"] == record["metrics"]["validation/accuracy"]


def _oracle_losses(cfg, steps: int) -> list[float]:
    """The logged losses recomputed outside the training loop: the run's seeded initial model (build_model), the
    whole fixture as one batch (so the shuffled order cannot matter), plain cross-entropy, torch's AdamW with the HF
    Trainer decay grouping, gradient clipping and a linear decay without warmup, stepped by hand."""
    from adamix_runner.pipelines import for_kind

    model, _, _ = build_model(cfg, 2)
    model.train()
    rows = [json.loads(line) for line in (FIXTURES / "glue" / "mrpc" / "train.jsonl").read_text().splitlines()]
    tokenizer = for_kind("classification").load_tokenizer(cfg)
    batch = tokenizer(
        [r["sentence1"] for r in rows], [r["sentence2"] for r in rows], padding=True, return_tensors="pt"
    )
    labels = torch.tensor([r["label"] for r in rows])
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)]
    groups = [{"params": decay, "weight_decay": cfg.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.train.lr, eps=cfg.train.adam_epsilon)
    losses = []
    for step in range(steps):
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, labels)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.train.max_grad_norm)
        for group in optimizer.param_groups:
            group["lr"] = cfg.train.lr * (steps - step) / steps
        optimizer.step()
    return losses


def test_logged_losses_equal_an_independent_recomputation_and_fall(compose_run):
    """An oracle for the loop's loss, optimizer, decay grouping, clipping and schedule: a single adapter, no dropout,
    the 64-row fixture as one full batch, an lr high enough that the loss leaves ln 2 (0.758 after the first step)."""
    overrides = (*MRPC, "model=tiny-bert", "peft=adapter", "train.batch_size=64", "train.max_steps=8")
    overrides += ("train.log_every_steps=1", "train.lr=1e-1", "train.warmup_ratio=0", "train.eval_every_epoch=false")
    overrides += ("+model.config_overrides={hidden_dropout_prob:0.0,attention_probs_dropout_prob:0.0}",)
    cfg = compose_run(*overrides)
    logged = _train_losses(run(cfg).run_dir)
    assert logged == pytest.approx(_oracle_losses(cfg, 8), abs=2e-5)
    assert len(logged) == 8 and logged[0] == pytest.approx(math.log(2), abs=1e-3)  # untrained: chance on 2 classes
    assert max(abs(loss - math.log(2)) for loss in logged) > 0.05  # the updates move it: a no-op step would not


def test_same_config_lands_in_the_same_folder_and_is_not_redone(compose_run):
    first = run(compose_run(*MRPC, "model=tiny-bert", *SHORT))
    lines = len(_jsonl(first.run_dir))
    again = run(compose_run(*MRPC, "model=tiny-bert", *SHORT))
    assert again.run_dir == first.run_dir
    assert again.record == first.record
    assert len(_jsonl(first.run_dir)) == lines


def test_eval_only_reloads_the_adapter_and_reproduces_the_metrics(compose_run):
    trained = run(compose_run(*MRPC, "model=tiny-roberta", *SHORT))
    adapter = trained.run_dir / "adapter"
    evaluated = run(compose_run(*MRPC, "model=tiny-roberta", "eval_only=true", f"adapter_path={adapter}"))
    assert evaluated.run_dir != trained.run_dir
    assert evaluated.record["metrics"] == trained.record["metrics"]


def test_single_sentence_classification_on_roberta(compose_run):
    result = run(compose_run("task=sst2", f"task.data_dir={FIXTURES / 'glue' / 'sst2'}", "model=tiny-roberta", *SHORT))
    assert set(result.record["metrics"]) == {"validation/loss", "validation/accuracy"}
    assert 0.0 <= result.record["metrics"]["validation/accuracy"] <= 1.0


def test_regression_skips_the_consistency_view_and_reports_correlations(compose_run):
    stsb = ["task=stsb", f"task.data_dir={FIXTURES / 'glue' / 'stsb'}", "model=tiny-bert", *SHORT]
    with_kl = run(compose_run(*stsb))
    without_kl = run(compose_run(*stsb, "peft.consistency_weight=0"))
    assert set(with_kl.record["metrics"]) == {"validation/loss", "validation/pearson", "validation/spearman"}
    # one logit: the KL term is exactly zero, so the second view is skipped and both runs are the same
    assert _train_losses(with_kl.run_dir) == _train_losses(without_kl.run_dir)
    assert with_kl.record["metrics"] == without_kl.record["metrics"]


def test_consistency_weight_changes_training(compose_run):
    with_kl = run(compose_run(*MRPC, "model=tiny-bert", *SHORT))
    without_kl = run(compose_run(*MRPC, "model=tiny-bert", *SHORT, "peft.consistency_weight=0"))
    assert _train_losses(with_kl.run_dir) != _train_losses(without_kl.run_dir)


def test_local_csv_with_string_labels(compose_run):
    csv = FIXTURES / "local" / "sentiment.csv"
    result = run(
        compose_run(
            "task=local",
            f"task.data_files.train={csv}",
            "task.text_fields=[text]",
            "task.label_field=sentiment",
            "task.metrics=[accuracy]",
            "model=tiny-bert",
            *SHORT,
        )
    )
    config = json.loads((result.run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["task"]["label_names"] == ["negative", "neutral", "positive"]
    assert config["task"]["num_labels"] == 3


@pytest.mark.parametrize(
    "loader",
    [[], ["train.group_by_length=true", "train.num_workers=1"]],
    ids=["shuffled", "length-grouped-with-a-worker"],
)
def test_interrupted_run_resumes_from_its_checkpoint_and_matches(compose_run, monkeypatch, tmp_path, loader):
    two_epochs = [*MRPC, "model=tiny-bert", "train.epochs=2", "train.batch_size=16", "train.log_every_steps=1"]
    two_epochs += loader
    reference = run(compose_run(*two_epochs, f"output_root={tmp_path / 'reference'}"))
    original_log = JsonlTracker.log

    def crash_in_epoch_two(self, metrics, step):
        original_log(self, metrics, step)
        if step == 6 and "train/loss" in metrics:
            raise KeyboardInterrupt

    monkeypatch.setattr(JsonlTracker, "log", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(compose_run(*two_epochs))
    monkeypatch.setattr(JsonlTracker, "log", original_log)
    resumed = run(compose_run(*two_epochs))
    assert json.loads((resumed.run_dir / "results.json").read_text())["status"] == "completed"
    assert resumed.record["metrics"] == reference.record["metrics"]
    resumed_losses = {row["step"]: row["train/loss"] for row in _jsonl(resumed.run_dir) if "train/loss" in row}
    reference_losses = {row["step"]: row["train/loss"] for row in _jsonl(reference.run_dir) if "train/loss" in row}
    assert resumed_losses == reference_losses
    reference_adapter = load_file(reference.run_dir / "adapter" / "adaptation.safetensors")
    resumed_adapter = load_file(resumed.run_dir / "adapter" / "adaptation.safetensors")
    assert all((reference_adapter[k] == resumed_adapter[k]).all() for k in reference_adapter)


def test_select_best_restores_the_best_evaluated_weights(compose_run):
    overrides = [*MRPC, "model=tiny-bert", "train.epochs=3", "train.batch_size=16", "train.lr=0.05"]
    result = run(compose_run(*overrides, "train.select=best", "task.primary_metric=validation/f1"))
    evals = [row for row in _jsonl(result.run_dir) if "validation/f1" in row]
    assert [row["step"] for row in evals] == [4, 8, 12]
    best = max(evals, key=lambda row: row["validation/f1"])
    assert best["step"] == 8  # the middle epoch: neither the last nor the first weights
    final = result.record["metrics"]
    assert final["validation/f1"] == best["validation/f1"]
    assert final["validation/loss"] == pytest.approx(best["validation/loss"], abs=1e-6)
    assert final["validation/loss"] != pytest.approx(evals[-1]["validation/loss"], abs=1e-5)


def test_wandb_offline_run_is_written_inside_the_run_folder(compose_run, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = run(compose_run(*MRPC, "model=tiny-bert", *SHORT, "logger=wandb"))
    assert list((result.run_dir / "wandb").glob("offline-run-*"))
