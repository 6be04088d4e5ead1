"""Beam search with the official settings, the LM losses, and the NLG path end to end on a tiny GPT-2 with the
real GPT-2 BPE (train a few steps with AdaMix-LoRA, merge, decode, score); parameter plans on GPT-2 medium."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from adamix_runner import tasks
from adamix_runner.adaptation import AdaptationSpec, apply, count_parameters, merge, trainable_parameters
from adamix_runner.config import GenerationConfig
from adamix_runner.evaluation.generation import (
    GeneratedNoRepeatNGram,
    decode_completion,
    generate,
    stop_ids,
)
from adamix_runner.evaluation.nlg_metrics import score_split, write_predictions
from adamix_runner.models.causal_lm import load_causal_lm, load_lm_tokenizer
from adamix_runner.tasks.encode_lm import LMCollator, encode_pairs, prompt_ids
from adamix_runner.training.lm_losses import lm_adamix_loss, lm_loss
from tests.conftest import FIXTURES, compose_config


def _model_cfg(name: str, *overrides: str):
    return compose_config(f"model={name}", *overrides).model


@pytest.fixture(scope="module")
def tokenizer():
    return load_lm_tokenizer(_model_cfg("tiny-gpt2"))


@pytest.fixture
def tiny_lm():
    torch.manual_seed(0)
    return load_causal_lm(_model_cfg("tiny-gpt2")).eval()


CONTEXTS = ["name : The Eagle | Type : coffee shop", "name : Blue Spice | Type : pub | near : The Sorrento", "a : b"]


def test_official_settings_reach_generate(tiny_lm, tokenizer, monkeypatch):
    seen = {}
    original = tiny_lm.generate

    def spy(**kwargs):
        seen.update(kwargs)
        output = original(**{**kwargs, "num_beams": 2, "max_new_tokens": 3})
        assert output.shape[1] <= kwargs["input_ids"].shape[1] + 3
        return output

    monkeypatch.setattr(tiny_lm, "generate", spy)
    run_settings = GenerationConfig(**OmegaConf.to_container(compose_config().generation))  # what a run passes
    assert run_settings == GenerationConfig()
    generate(tiny_lm, tokenizer, prompt_ids(tokenizer, CONTEXTS[:1], 64), run_settings)
    expected = {"num_beams": 10, "length_penalty": 0.8, "repetition_penalty": 1.0, "max_new_tokens": 64}
    assert {key: seen[key] for key in expected} == expected
    assert seen["eos_token_id"] == [50256, 628] and seen["do_sample"] is False
    assert "no_repeat_ngram_size" not in seen  # ours, over the generated tokens only
    (processor,) = seen["logits_processor"]
    assert isinstance(processor, GeneratedNoRepeatNGram) and processor.ngram_size == 4


def test_batched_decoding_with_left_padding_equals_one_by_one(tiny_lm, tokenizer):
    prompts = prompt_ids(tokenizer, CONTEXTS, 64)
    settings = GenerationConfig(num_beams=3, max_new_tokens=8, batch_size=3)
    batched = generate(tiny_lm, tokenizer, prompts, settings)
    assert batched == [generate(tiny_lm, tokenizer, [p], settings)[0] for p in prompts]


def test_ngram_ban_ignores_the_prompt():
    scores = torch.zeros(1, 10)
    prompt, generated = [5, 6, 9], [1, 5, 6, 7, 5, 6]
    banned = GeneratedNoRepeatNGram(3, len(prompt))(torch.tensor([prompt + generated]), scores)
    assert torch.isinf(banned[0]).nonzero().flatten().tolist() == [7]  # (5, 6) -> 7 generated; the prompt's 9 stays


def test_completion_is_cut_like_gpt2_decode(tokenizer):
    stops = stop_ids(tokenizer)
    assert stops == [50256, 628]
    hello = tokenizer.encode(" Hello world.")
    assert decode_completion(tokenizer, [*hello, 628, *hello], stops) == "Hello world."
    assert decode_completion(tokenizer, [*hello, 50256, *hello], stops) == "Hello world."
    assert decode_completion(tokenizer, tokenizer.encode(" a.\n\nb"), stops) == "a."
    assert decode_completion(tokenizer, hello, stops) == "Hello world."


def test_lm_loss_is_the_official_label_smoothed_nll_on_labelled_tokens():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 5, 7), torch.tensor([[-100, -100, 3, 4, 1], [-100, 2, 2, -100, -100]])
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    keep = labels[:, 1:] != -100
    target = labels[:, 1:].clamp(min=0)
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    official = (0.9 * nll + 0.1 * -logp.mean(-1))[keep].mean()  # NLG/src/model.py, label_smooth 0.1
    assert lm_loss(logits, labels, 0.1) == pytest.approx(official.item(), rel=1e-5)
    assert lm_loss(logits, torch.full_like(labels, -100)).item() == 0


def test_lm_adamix_loss_ties_the_views_on_labelled_tokens_only():
    torch.manual_seed(0)
    labels = torch.tensor([[-100, -100, 3, 4], [-100, 2, -100, -100]])
    first, second = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    loss, parts = lm_adamix_loss(torch.cat([first, second]), {"labels": labels}, 2, 100.0, 0.0)
    a, b = first[:, :-1][labels[:, 1:] != -100], second[:, :-1][labels[:, 1:] != -100]  # 3 positions
    kl = (
        0.5
        * (
            F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="sum")
            + F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="sum")
        )
        / 3
    )
    assert parts["consistency_loss"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert loss.item() == pytest.approx(lm_loss(first, labels).item() + 100 * kl.item(), rel=1e-5)
    _, parts = lm_adamix_loss(torch.cat([first, first]), {"labels": labels}, 2, 100.0, 0.0)
    assert parts["consistency_loss"].item() == pytest.approx(0, abs=1e-6)
    assert lm_adamix_loss(first, {"labels": labels}, 1, 100.0)[0].item() == pytest.approx(
        lm_loss(first, labels).item()
    )
    with pytest.raises(ValueError, match="rows of logits"):
        lm_adamix_loss(first, {"labels": labels}, 2, 100.0)


def test_nlg_path_end_to_end_on_tiny_gpt2(tiny_lm, tokenizer, tmp_path):
    cfg = compose_config("task=e2e", f"task.data_dir={FIXTURES / 'nlg' / 'e2e'}")
    task = tasks.load(cfg.task, cfg.data)
    spec = AdaptationSpec("adamix_lora", 8, num_experts=8, lora_rank=4, lora_alpha=32.0, lora_dropout=0.1)
    router = apply(tiny_lm, spec, seed=0)
    loader = DataLoader(encode_pairs(task.splits["train"], tokenizer, 512), 4, collate_fn=LMCollator(tokenizer))
    optimizer = torch.optim.AdamW([p for _, p in trainable_parameters(tiny_lm)], lr=1e-2)
    tiny_lm.train()
    losses = []
    for _, batch in zip(range(3), loader, strict=False):
        inputs = {k: torch.cat([batch[k], batch[k]]) for k in ("input_ids", "attention_mask")}
        with router.views(2):
            logits = tiny_lm(**inputs).logits
        loss, parts = lm_adamix_loss(logits, batch, 2, 100.0, 0.1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(parts["task_loss"].item())
        assert parts["consistency_loss"].item() > 0  # the two views drew different experts
    assert losses[-1] < losses[0]
    merge(tiny_lm)
    test = task.splits["test"]
    prompts = prompt_ids(tokenizer, test["context"], task.max_prompt_length)
    predictions = generate(tiny_lm, tokenizer, prompts, GenerationConfig(num_beams=2, max_new_tokens=8, batch_size=4))
    metrics = score_split("test", predictions, test["references"], ["bleu", "nist"], task.protocol)
    assert set(metrics) == {"test/bleu", "test/nist", "test/empty_predictions"}
    assert all(v >= 0 for v in metrics.values())
    write_predictions(tmp_path, "test", test["context"], predictions, test["references"])
    assert len((tmp_path / "test.pred.txt").read_text().splitlines()) == len(test)


@pytest.mark.parametrize(("method", "expected"), [("adamix_lora", 393_216), ("adamix", 417_984)])
def test_gpt2_medium_plans_count_the_papers_parameters(method, expected):
    model = load_causal_lm(_model_cfg("gpt2-medium", "model.pretrained=false"), on_meta=True)
    lora = {"lora_rank": 4, "lora_alpha": 32.0} if method == "adamix_lora" else {}
    apply(model, AdaptationSpec(method, 8, num_experts=8, **lora), seed=0)
    assert count_parameters(model).inference == expected  # reference §8: 0.39M (AdaMix-LoRA), 0.42M (Adapter)
