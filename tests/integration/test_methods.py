"""Every method through the same CLI path: train, save with the head, reload on logits, export, plan counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate.utils import set_seed
from peft import PeftModel
from transformers import AutoModelForSequenceClassification

from adamix_runner.build import rebuild_run
from adamix_runner.cli.export import export_run
from adamix_runner.config.compose import CONFIG_DIR
from adamix_runner.errors import UserError
from adamix_runner.models.encoder import load_model
from adamix_runner.run import run
from tests.conftest import FIXTURES

MRPC = [f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}", "task=mrpc"]
SHORT = ["train.max_steps=2", "train.batch_size=8", "data.max_eval_samples=16"]
METHODS = ["adamix", "adapter", "pfeiffer", "houlsby", "lora", "adamix_lora", "bitfit", "prefix", "full", "unipelt"]


def _batch():
    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(1000, 5000, (3, 11), generator=generator),
        "attention_mask": torch.ones(3, 11, dtype=torch.long),
    }


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_saves_and_reloads_to_the_same_metrics(compose_run, method):
    overrides = [*MRPC, "model=tiny-bert", f"peft={method}", *SHORT]
    trained = run(compose_run(*overrides))
    saved = trained.run_dir / ("model" if method == "full" else "adapter")
    assert trained.record["status"] == "completed"
    assert (trained.run_dir / "adapter").exists() == (method != "full")
    reloaded = run(compose_run(*overrides, "eval_only=true", f"adapter_path={saved}"))
    assert reloaded.record["metrics"] == trained.record["metrics"]


def test_eval_only_refuses_an_adapter_of_another_method(compose_run):
    trained = run(compose_run(*MRPC, "model=tiny-bert", "peft=lora", *SHORT))
    with pytest.raises(Exception, match="holds a peft=lora adapter; run with peft=lora"):
        run(compose_run(*MRPC, "model=tiny-bert", "eval_only=true", f"adapter_path={trained.run_dir / 'adapter'}"))


@pytest.mark.parametrize("method", ["lora", "adamix_lora"])
@pytest.mark.parametrize("model", ["tiny-bert", "tiny-roberta"])
def test_lora_runs_export_to_peft_with_equal_logits(compose_run, method, model):
    trained = run(compose_run(*MRPC, f"model={model}", f"peft={method}", *SHORT, "train.lr=0.05"))
    folder = export_run(trained.run_dir, "peft")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    cfg, ours = rebuild_run(trained.run_dir)
    set_seed(cfg.seed)  # the same random backbone the run started from
    base = load_model(cfg.model, 2)
    theirs = PeftModel.from_pretrained(base, str(folder)).eval()
    with torch.no_grad():
        expected, got = ours(**_batch()).logits, theirs(**_batch()).logits
        with theirs.disable_adapter():
            without_lora = theirs(**_batch()).logits
    assert torch.allclose(expected, got, atol=1e-5, rtol=0)
    assert not torch.allclose(got, without_lora, atol=1e-4)  # the trained LoRA update is really in the export


def test_lora_run_folds_into_a_plain_transformers_model(compose_run):
    trained = run(compose_run(*MRPC, "model=tiny-bert", "peft=adamix_lora", *SHORT, "train.lr=0.05"))
    folder = export_run(trained.run_dir, "folded")
    _, ours = rebuild_run(trained.run_dir)
    plain = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        assert torch.allclose(ours(**_batch()).logits, plain(**_batch()).logits, atol=1e-5, rtol=0)


def test_adapter_runs_refuse_peft_export_with_a_clear_message(compose_run):
    trained = run(compose_run(*MRPC, "model=tiny-bert", "peft=adamix", *SHORT))
    with pytest.raises(Exception, match="cannot export a peft=adamix run as folded"):
        export_run(trained.run_dir, "folded")


def test_unipelt_runs_refuse_export_with_the_reason(compose_run):
    trained = run(compose_run(*MRPC, "model=tiny-bert", "peft=unipelt", "peft.components=[adapter,prefix]", *SHORT))
    assert trained.record["status"] == "completed"
    for fmt in ("peft", "folded"):
        with pytest.raises(UserError, match=f"cannot export a peft=unipelt run as {fmt}: UniPELT's gates depend"):
            export_run(trained.run_dir, fmt)


@pytest.mark.parametrize(
    ("model", "peft", "extra", "inference"),
    [
        ("roberta-large", "adamix", [], 811_392),
        ("bert-base", "adamix", ["peft.adapter_dim=48"], 894_528),
        ("roberta-large", "lora", [], 786_432),
        ("bert-base", "lora", [], 294_912),
        ("roberta-large", "pfeiffer", [], 811_392),
        ("roberta-large", "houlsby", [], 835_968),
        ("bert-base", "houlsby", ["peft.adapter_dim=24"], 903_744),
        ("bert-base", "bitfit", [], 102_912),
        ("bert-base", "prefix", [], 184_320),
        ("roberta-large", "full", [], 354_310_144),
        ("bert-base", "unipelt", ["peft.components=[adapter,prefix]"], 1_097_304),  # Table 2 "UNIPELT (AP)" 1.1M
        ("bert-base", "unipelt", [], 1_410_672),  # Table 2 "UNIPELT (APL)" 1.4M
        ("roberta-large", "unipelt", ["peft.components=[adapter,prefix]"], 2_925_744),
        ("roberta-large", "unipelt", [], 3_761_376),
    ],
)
def test_dry_run_plans_the_papers_param_column(compose_run, model, peft, extra, inference):
    planned = run(
        compose_run("task=mnli", f"model={model}", "model.pretrained=false", f"peft={peft}", *extra, "dry_run=true")
    )
    assert planned.record["status"] == "planned"
    assert planned.record["params"]["inference"] == inference
    assert planned.record["metrics"] == {}
    assert json.loads((planned.run_dir / "results.json").read_text())["status"] == "planned"


# Counts from the shapes (L layers of width d), not from the code's output. Adapter (down d*r+r, up r*d+d) after
# each FFN, share=up: M down-projections train, one up. LoRA on GPT-2's fused c_attn, q and v: A [2r, d],
# B [2d, r] (grouped); AdaMix-LoRA trains M A's and one B. Merged inference keeps one of each.
GPT2_M, BERT_BASE, ROBERTA_LARGE = (24, 1024), (12, 768), (24, 1024)


def _adapter(shape, r, experts=1):
    layers, d = shape
    return layers * (experts * (d * r + r) + r * d + d)


def _gpt2_lora(r, experts=1):
    layers, d = GPT2_M
    return layers * (experts * 2 * r * d + 2 * d * r)


HEAD_BERT = 768 * 3 + 3  # BertForSequenceClassification: classifier over the pooled output, 3 MNLI labels
HEAD_ROBERTA = 1024 * 1024 + 1024 + 1024 * 3 + 3  # RobertaClassificationHead: dense + out_proj
NLG = {"seed": 110, "lr": 2e-4, "batch_size": 8, "adam_epsilon": 1e-6, "decay_all": True, "max_grad_norm": 0.0}
EXPERIMENTS = {
    # name: (trainable, inference, backbone, settings from the official scripts)
    "mnli_bert_base": (
        _adapter(BERT_BASE, 48, 4) + HEAD_BERT,
        _adapter(BERT_BASE, 48),
        109_482_240,
        {"lr": 4e-4, "epochs": 40, "batch_size": 64, "num_experts": 4, "select": "best"},
    ),
    "mnli_roberta_large": (
        _adapter(ROBERTA_LARGE, 16, 4) + HEAD_ROBERTA,
        _adapter(ROBERTA_LARGE, 16),
        354_310_144,
        {"lr": 3e-4, "epochs": 20, "batch_size": 64, "num_experts": 4},
    ),
}
for _task, _epochs, _warmup, _smoothing in (
    ("e2e", 20, 2000, 0.1),
    ("webnlg", 25, 2500, 0.1),
    ("dart", 20, 2000, 0.0),
):
    _common = {**NLG, "epochs": _epochs, "warmup_steps": _warmup, "label_smoothing": _smoothing}
    EXPERIMENTS[f"{_task}_gpt2_medium_adamix"] = (
        _adapter(GPT2_M, 8, 8),
        _adapter(GPT2_M, 8),
        354_823_168,
        {**_common, "num_experts": 8, "adapter_dim": 8, "consistency_weight": 100.0},
    )
    EXPERIMENTS[f"{_task}_gpt2_medium_adamix_lora"] = (
        _gpt2_lora(4, 8),
        _gpt2_lora(4),
        354_823_168,
        {**_common, "num_experts": 8, "lora_rank": 4, "lora_alpha": 32.0, "consistency_weight": 100.0},
    )
    _lora = {**_common, "lora_rank": 4, "lora_alpha": 32.0}
    if _task == "e2e":  # run_train_e2e_lora_only.sh, the LoRA paper's recipe
        _lora.update(epochs=5, warmup_steps=500)
    EXPERIMENTS[f"{_task}_gpt2_medium_lora"] = (_gpt2_lora(4), _gpt2_lora(4), 354_823_168, _lora)


def test_every_experiment_file_is_pinned():
    assert sorted(EXPERIMENTS) == sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_every_experiment_plans_its_counts_with_the_official_settings(compose_run, experiment):
    trainable, inference, backbone, settings = EXPERIMENTS[experiment]
    cfg = compose_run(f"experiment={experiment}", "model.pretrained=false", "dry_run=true")
    planned = run(cfg)
    assert planned.record["status"] == "planned"
    assert planned.record["params"] == {"trainable": trainable, "inference": inference, "backbone": backbone}
    merged = {**cfg.train, **cfg.peft, "seed": cfg.seed}
    assert {key: merged[key] for key in settings} == settings
