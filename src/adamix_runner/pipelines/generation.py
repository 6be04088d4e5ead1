"""Generation (E2E, WebNLG, DART): a causal LM trained on context + completion, beam search, NLG metrics.

The protocol is the official NLG code's (method reference §5, §6.2): LM loss on the completion tokens (label
smoothing optional) plus, for AdaMix, the token-level symmetric KL between two routed views ×100; decoding by beam
search (cfg.generation); predictions and references written to `<run>/predictions/`.
"""

from __future__ import annotations

from pathlib import Path

from accelerate.utils import broadcast_object_list, gather_object
from omegaconf import OmegaConf

from adamix_runner.config import GenerationConfig
from adamix_runner.evaluation.generation import generate
from adamix_runner.evaluation.nlg_metrics import score_split, write_predictions
from adamix_runner.models.causal_lm import load_causal_lm, load_lm_tokenizer
from adamix_runner.pipelines import Prepared, seeded_evaluation
from adamix_runner.run_folder import PREDICTIONS
from adamix_runner.tasks.encode_lm import LMCollator, encode_pairs, prompt_ids, uses_chat
from adamix_runner.training.batching import make_train_loader
from adamix_runner.training.lm_losses import lm_adamix_loss

CONSISTENCY_WEIGHT = 100.0  # official NLG code: hard-coded `* 100.0` on the token-level KL (model.py L456)


def load_model(cfg, num_labels: int, *, on_meta: bool = False, model_cfg=None):
    return load_causal_lm(model_cfg or cfg.model, on_meta=on_meta)


def load_tokenizer(cfg):
    return load_lm_tokenizer(cfg.model)


def _evaluator(cfg, task, tokenizer, model, accelerator, folder: Path):
    """Each rank decodes its share of the inputs; rank 0 writes the predictions and scores them, and every rank
    gets the scores (they drive `select=best` everywhere)."""
    settings = GenerationConfig(**OmegaConf.to_container(cfg.generation, resolve=True))
    chat = uses_chat(tokenizer, cfg.model.prompt_format)

    def evaluate() -> dict[str, float]:
        results: dict[str, float] = {}
        for split in task.eval_splits:
            rows = task.splits[split]
            prompts = prompt_ids(tokenizer, rows["context"], task.max_prompt_length, chat)
            with accelerator.split_between_processes(prompts) as share:
                decoded = generate(model, tokenizer, share, settings)
            predictions = gather_object(decoded)  # contiguous shares in rank order: the inputs' order
            scores = None
            if accelerator.is_main_process:
                write_predictions(folder / PREDICTIONS, split, rows["context"], predictions, rows["references"])
                seen = rows["seen"] if "seen" in rows.column_names else None
                scores = score_split(split, predictions, rows["references"], task.metrics, task.protocol, seen)
            results.update(broadcast_object_list([scores])[0])
        return results

    return evaluate


def prepare(cfg, task, tokenizer, model, accelerator, folder) -> Prepared:
    train = encode_pairs(
        task.splits["train"], tokenizer, cfg.data.max_seq_length, uses_chat(tokenizer, cfg.model.prompt_format)
    )
    opts = cfg.train
    loader = make_train_loader(
        train, opts.batch_size, LMCollator(tokenizer), opts.group_by_length, opts.num_workers, seed=cfg.seed
    )
    weight = CONSISTENCY_WEIGHT if cfg.peft.consistency_weight is None else cfg.peft.consistency_weight
    smoothing = cfg.train.label_smoothing
    return Prepared(
        train_loader=loader,
        evaluate=seeded_evaluation(model, _evaluator(cfg, task, tokenizer, model, accelerator, folder)),
        loss=lambda logits, batch, views: lm_adamix_loss(logits, batch, views, weight, smoothing),
        num_views=2 if weight > 0 else 1,
    )
