"""AdaMixTrainer: one implementation with adamix-run, exact resume, exports that load, TRL's SFTTrainer."""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from peft import PeftModel
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from adamix_runner import AdaMixConfig, add_adamix, load_adamix
from adamix_runner.adaptation import adaptation_state_dict, apply
from adamix_runner.config.checks import adaptation_spec
from adamix_runner.hf import AdaMixTrainer
from adamix_runner.models.tokenizer_assets import gpt2_tokenizer_path
from adamix_runner.pipelines import classification
from adamix_runner.run import run
from adamix_runner.training import loop
from tests.conftest import FIXTURES

RUNNER = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "+model.architecture.hidden_dropout_prob=0.0",  # dropout draws from the global RNG, which the two loops
    "+model.architecture.attention_probs_dropout_prob=0.0",  # consume differently; routing is the model's own
    "peft=adamix_lora",
    "peft.num_experts=4",
    "peft.lora_dropout=0.0",
    "train.batch_size=4",
    "train.max_steps=6",
    "train.log_every_steps=1",
    "train.cpu=true",
    "train.eval_every_epoch=false",
]


def _record_runner(monkeypatch, cfg):
    """Run adamix-run's run(cfg), recording every micro-batch it feeds and the loss it computes."""
    batches, losses = [], []
    original = loop._forward_loss

    def recording(model, batch, setup):
        batches.append({key: value.clone() for key, value in batch.items()})
        loss, parts = original(model, batch, setup)
        losses.append(loss.item())
        return loss, parts

    monkeypatch.setattr(loop, "_forward_loss", recording)
    result = run(cfg)
    monkeypatch.undo()
    return batches, losses, result


class _Replay(AdaMixTrainer):
    """Feeds recorded micro-batches in their order and records the loss of each."""

    def __init__(self, *args, batches, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches, self.losses = batches, []

    def get_train_dataloader(self):
        return DataLoader(self.batches, batch_size=None, shuffle=False)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.losses.append(loss.item())
        return loss


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_the_runner_and_the_trainer_give_the_same_losses_step_by_step(compose_run, monkeypatch, tmp_path, grad_accum):
    cfg = compose_run(*RUNNER, f"train.grad_accum={grad_accum}")
    batches, runner_losses, result = _record_runner(monkeypatch, cfg)
    assert len(batches) == 6 * grad_accum

    set_seed(cfg.seed)  # the runner's own order: seed, backbone, then the experts from the global RNG
    model = classification.load_model(cfg, 2)
    spec = adaptation_spec(cfg)
    config = AdaMixConfig(
        kind="lora", num_experts=spec.num_experts, rank=spec.lora_rank, alpha=spec.lora_alpha,
        dropout=spec.lora_dropout, share=spec.share, consistency_weight=1.0, seed=cfg.seed,
    )  # fmt: skip
    add_adamix(model, config)
    set_seed(cfg.seed)
    reference = classification.load_model(cfg, 2)
    apply(reference, spec, cfg.seed)
    assert all(torch.equal(v, adaptation_state_dict(reference)[k]) for k, v in adaptation_state_dict(model).items())

    args = TrainingArguments(
        str(tmp_path / "hf"), max_steps=6, gradient_accumulation_steps=grad_accum, learning_rate=cfg.train.lr,
        weight_decay=cfg.train.weight_decay, warmup_steps=1, max_grad_norm=cfg.train.max_grad_norm,
        lr_scheduler_type="linear", optim="adamw_torch", adam_epsilon=cfg.train.adam_epsilon, logging_steps=1,
        save_strategy="no", report_to=[], use_cpu=True, seed=cfg.seed, remove_unused_columns=False,
    )  # fmt: skip
    trainer = _Replay(model=model, args=args, batches=batches)
    trainer.train()
    assert trainer.losses == pytest.approx(runner_losses, rel=1e-5, abs=1e-6)
    ours = load_file(str(tmp_path / "hf" / "adamix" / "adaptation.safetensors"))
    theirs = load_file(str(result.run_dir / "adapter" / "adaptation.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)


BERT = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)


def _backbone():
    set_seed(0)
    return BertForSequenceClassification(BERT)


def _tiny_bert():
    return add_adamix(_backbone(), AdaMixConfig(num_experts=4, seed=3))


def _dataset(rows: int = 24) -> Dataset:
    ids = torch.randint(5, 50, (rows, 8), generator=torch.Generator().manual_seed(0))
    return Dataset.from_dict(
        {"input_ids": ids.tolist(), "attention_mask": [[1] * 8] * rows, "labels": (ids[:, 0] % 2).tolist()}
    )


def _args(folder, **kw) -> TrainingArguments:
    base = {"max_steps": 6, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1,
            "save_steps": 3, "report_to": [], "use_cpu": True, "seed": 0}  # fmt: skip
    return TrainingArguments(str(folder), **{**base, **kw})


class _KillAtStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed before step {self.step + 1}")


def _losses(trainer) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}


def test_a_killed_run_resumes_to_what_an_uninterrupted_run_gives(tmp_path):
    """Dropout on and four experts: the resumed run must restore the torch RNG and the routing generator."""
    whole = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path / "whole"), train_dataset=_dataset(),
                          merge_at_end=False)  # fmt: skip
    whole.train()

    killed = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path / "part"), train_dataset=_dataset(),
                           callbacks=[_KillAtStep(4)], merge_at_end=False)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    assert sorted(p.name for p in (tmp_path / "part").glob("checkpoint-*")) == ["checkpoint-3"]
    assert {"adamix_router.safetensors", "adaptation.safetensors", "head.safetensors"} <= {
        p.name for p in (tmp_path / "part" / "checkpoint-3").iterdir()
    }

    resumed = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path / "part"), train_dataset=_dataset(),
                            merge_at_end=False)  # fmt: skip
    resumed.train(resume_from_checkpoint=True)
    expected = _losses(whole)
    assert sorted(expected) == [1, 2, 3, 4, 5, 6]
    assert _losses(resumed) == pytest.approx(expected, rel=1e-6)  # steps 1-3 come from the checkpoint's state
    got, want = adaptation_state_dict(resumed.model), adaptation_state_dict(whole.model)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_resume_without_the_routing_state_is_refused(tmp_path):
    trainer = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path, max_steps=3), train_dataset=_dataset(),
                            merge_at_end=False)  # fmt: skip
    trainer.train()
    (tmp_path / "checkpoint-3" / "adamix_router.safetensors").unlink()
    again = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path, max_steps=6), train_dataset=_dataset())
    with pytest.raises(ValueError, match=r"has no adamix_router\.safetensors"):
        again.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))


def test_the_end_of_training_merges_and_writes_three_loadable_folders(tmp_path):
    trainer = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path, save_strategy="no"), train_dataset=_dataset())
    trainer.train()
    batch = {"input_ids": torch.tensor(_dataset(2)["input_ids"])}
    merged = trainer.model.eval()(**batch).logits
    rows = _dataset(8)
    logits = trainer.model(input_ids=torch.tensor(rows["input_ids"])).logits
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(rows["labels"])).item()
    assert trainer.evaluate(rows)["eval_loss"] == pytest.approx(expected, rel=1e-5)  # one view, the task loss
    assert parameter_count(trainer.model) < parameter_count(_tiny_bert())

    peft = PeftModel.from_pretrained(_backbone(), str(tmp_path / "peft_lora")).eval()
    assert torch.allclose(peft(**batch).logits, merged, atol=1e-5)

    again = load_adamix(_backbone(), tmp_path / "adamix").eval()
    assert torch.allclose(again(**batch).logits, merged, atol=1e-6)
    experts = load_adamix(_backbone(), tmp_path / "adamix", experts=True)
    assert next(m for n, m in experts.named_modules() if n.endswith("query.lora_A")).num_experts == 4
    assert torch.allclose(experts.eval()(**batch).logits, merged, atol=1e-5)  # eval mode: the experts' mean


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_the_log_carries_the_task_and_consistency_losses(tmp_path):
    trainer = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path, save_strategy="no", max_steps=2),
                            train_dataset=_dataset(), merge_at_end=False)  # fmt: skip
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logged) == 2
    assert all(entry["consistency_loss"] > 0 for entry in logged)  # two views: other dropout masks and experts
    for entry in logged:
        assert entry["loss"] == pytest.approx(entry["task_loss"] + entry["consistency_loss"], rel=1e-4, abs=1e-6)


def test_bf16_mixed_precision_trains(tmp_path):
    trainer = AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path, save_strategy="no", max_steps=2, bf16=True),
                            train_dataset=_dataset(), merge_at_end=False)  # fmt: skip
    trainer.train()
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in trainer.state.log_history if "loss" in e)


def test_gradient_checkpointing_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="gradient_checkpointing=False"):
        AdaMixTrainer(model=_tiny_bert(), args=_args(tmp_path, gradient_checkpointing=True), train_dataset=_dataset())


def test_a_model_without_adamix_is_refused_before_training(tmp_path):
    plain = _backbone()
    with pytest.raises(ValueError, match="call add_adamix"):
        AdaMixTrainer(model=plain, args=_args(tmp_path), train_dataset=_dataset())


def test_sft_trainer_trains_a_causal_lm_with_adamix(tmp_path):
    pytest.importorskip("trl", reason="TRL is optional: pip install 'adamix-runner[trl]'")
    from trl import SFTConfig

    from adamix_runner.hf.sft import AdaMixSFTTrainer

    set_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1))  # fmt: skip
    backbone = copy.deepcopy(model)
    ids = torch.randint(3, 64, (16, 10), generator=torch.Generator().manual_seed(0)).tolist()
    # SFTConfig turns on gradient checkpointing (AdaMix refuses it) and bf16 (the comparison below is in float32)
    args = SFTConfig(
        str(tmp_path), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-2, logging_steps=1,
        save_strategy="no", report_to=[], use_cpu=True, gradient_checkpointing=False, bf16=False,
    )  # fmt: skip
    args.dataset_kwargs = {"skip_prepare_dataset": True}
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_path())  # offline; the ids below come pre-tokenized
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(0)  # an id inside the tiny vocabulary (SFT copies it)
    trainer = AdaMixSFTTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_dict({"input_ids": ids}),
        data_collator=DataCollatorForLanguageModeling(pad_token_id=0),
        adamix_config=AdaMixConfig(num_experts=4, consistency_weight=1.0),
    )
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logged) == 3 and logged[-1]["consistency_loss"] > 0
    peft = PeftModel.from_pretrained(backbone, str(tmp_path / "peft_lora")).eval()
    fresh_ids = torch.tensor(ids[:2])
    assert torch.allclose(peft(input_ids=fresh_ids).logits, model.eval()(input_ids=fresh_ids).logits, atol=1e-5)
