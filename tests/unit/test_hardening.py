"""Promises without a test elsewhere: checkpoint shapes are checked before any copy, AdamW's decay grouping and the
warmup arithmetic, the expected LOAD REPORT is dropped (real ones kept), train defaults have one source."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from adamix_runner import config
from adamix_runner.config.compose import CONFIG_DIR, compose_config
from adamix_runner.errors import UserError
from adamix_runner.models.encoder import expected_load_report
from adamix_runner.training import checkpoint as ckpt
from adamix_runner.training.checkpoint import BEST_PREFIX, restore
from adamix_runner.training.optim import build_optimizer, build_scheduler


def _setup_with_checkpoint(tmp_path: Path, saved: dict[str, torch.Tensor], current: dict[str, torch.Tensor]):
    ckpt.save_step(
        tmp_path,
        3,
        1,
        trainable=saved,
        optimizer_state={"state": {}, "param_groups": []},
        scheduler_state={},
        router_state={},
        progress={"epoch": 0, "batches_done": 3, "global_step": 3, "best_metric": None, "best_step": -1},
    )
    params = [(name, nn.Parameter(tensor.clone())) for name, tensor in current.items()]
    one_process = SimpleNamespace(num_processes=1, process_index=0, scaler=None)
    return SimpleNamespace(checkpoint_dir=tmp_path, params=params, accelerator=one_process)


@pytest.mark.parametrize(
    "saved",
    [
        {"w": torch.ones(1, 3), "b": torch.ones(3)},  # would broadcast silently into [4, 3]
        {"w": torch.ones(4, 3), "b": torch.ones(3), BEST_PREFIX + "w": torch.ones(2, 3)},  # a best copy too
        {"w": torch.ones(4, 3), "b": torch.ones(5)},  # cannot broadcast: used to fail after copying `w`
    ],
)
def test_a_checkpoint_of_other_shapes_is_refused_before_anything_is_copied(tmp_path, saved):
    setup = _setup_with_checkpoint(tmp_path, saved, {"w": torch.zeros(4, 3), "b": torch.zeros(3)})
    with pytest.raises(UserError, match=r"does not fit this model: .* has shape \(\d+, ?\d*\), the model's is"):
        restore(setup, optimizer=None, scheduler=None)
    assert all(not param.any() for _, param in setup.params)


def test_adamw_decays_weights_but_not_biases_or_layernorm_unless_decay_all():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2, bias=False))
    params = list(model.parameters())
    groups = build_optimizer(model, params, lr=1e-3, weight_decay=0.1).param_groups
    decayed = {id(p) for p in groups[0]["params"]}
    assert decayed == {id(model[0].weight), id(model[2].weight)}
    assert groups[0]["weight_decay"] == 0.1
    assert {id(p) for p in groups[1]["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}
    assert groups[1]["weight_decay"] == 0.0
    everything = build_optimizer(model, params, lr=1e-3, weight_decay=0.1, decay_all=True).param_groups
    assert len(everything) == 1 and len(everything[0]["params"]) == 5


@pytest.mark.parametrize(("total", "ratio", "steps", "warmup"), [(100, 0.06, 0, 6), (50, 0.06, 0, 3), (10, 0.1, 4, 4)])
def test_linear_warmup_then_linear_decay(total, ratio, steps, warmup):
    assert warmup == (steps or math.ceil(total * ratio))
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, total, ratio, steps)
    rates = []
    for _ in range(total):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    expected = [step / warmup if step < warmup else (total - step) / (total - warmup) for step in range(total)]
    assert rates == pytest.approx(expected, abs=1e-12)
    assert scheduler.get_last_lr()[0] == 0.0


HEAD_ONLY = (
    "[transformers] \x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m from: /models/minilm\n"
    "Key               | Status  | \n"
    "------------------+---------+-\n"
    "classifier.weight | MISSING | \n"
    "classifier.bias   | MISSING | \n\n"
    "Notes:\n- MISSING:\tthose params were newly initialized because missing from the checkpoint."
)


def test_only_the_report_of_the_newly_initialised_head_is_dropped():
    assert expected_load_report(HEAD_ONLY)
    assert expected_load_report(HEAD_ONLY.replace("classifier.", "score.").replace("Bert", "GPT2"))
    backbone = HEAD_ONLY.replace("classifier.bias  ", "encoder.layer.0.q")
    assert not expected_load_report(backbone)
    assert not expected_load_report(HEAD_ONLY.replace("bias   | MISSING", "bias   | UNEXPECTED"))
    assert not expected_load_report("some other warning about classifier.weight | MISSING")


def test_pretrained_loading_reports_no_new_head_but_keeps_real_reports(caplog):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from adamix_runner.models.encoder import _quiet_head_report, load_model

    def reports() -> list[str]:
        return [record.getMessage() for record in caplog.records if "LOAD REPORT" in record.getMessage()]

    model_cfg = compose_config("model=minilm").model
    load_model(model_cfg, num_labels=2)
    assert reports() == []
    # the same checkpoint in a model with one more layer: missing backbone weights are a real report, kept
    grown = AutoConfig.from_pretrained(model_cfg.path, num_hidden_layers=7, num_labels=2)
    with _quiet_head_report():
        AutoModelForSequenceClassification.from_pretrained(model_cfg.path, config=grown)
    assert len(reports()) == 1 and "bert.encoder.layer.6.output.dense.weight" in reports()[0]


def test_train_values_come_from_the_yaml_alone():
    """The schema holds types only: a default in both places could disagree (it did: 3 epochs vs 2)."""
    fields = dataclasses.fields(config.TrainConfig)
    assert all(field.default == "???" for field in fields)
    yaml = OmegaConf.load(Path(CONFIG_DIR) / "train" / "default.yaml")
    assert set(yaml) == {field.name for field in fields}
    composed = compose_config().train
    assert OmegaConf.to_container(composed) == OmegaConf.to_container(yaml)


@pytest.mark.parametrize(
    "method",
    [
        "adamix",
        "adamix_lora",
        *(pytest.param(m, marks=pytest.mark.slow) for m in ("lora", "houlsby", "prefix", "bitfit")),
    ],
)
def test_one_training_forward_gives_every_trainable_parameter_a_gradient(method):
    """What DDP without find_unused_parameters needs: undrawn experts get a zero gradient, not None."""
    from adamix_runner.adaptation import trainable_parameters
    from adamix_runner.build import build_model

    cfg = compose_config("model=tiny-bert", f"peft={method}")
    model, router, _ = build_model(cfg, num_labels=2)
    model.train()
    batch = {"input_ids": torch.randint(0, 1000, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long)}
    views = 2 if method.startswith("adamix") else 1
    with router.views(views):
        logits = model(**{key: torch.cat([value] * views) for key, value in batch.items()}).logits
    logits.square().sum().backward()
    params = trainable_parameters(model)
    assert params
    assert [name for name, param in params if param.grad is None] == []
