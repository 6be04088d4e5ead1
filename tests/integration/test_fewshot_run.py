"""Prompt-based few-shot runs through the real CLI path: every method on a tiny masked LM and a tiny causal LM,
the LiST adapter's parameter count (the oracle of fewshot reference §2.5), reload, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adamix_runner.errors import OfflineError, UserError
from adamix_runner.run import run
from tests.conftest import FIXTURES

LIST_DIR = Path(__file__).parents[2] / ".." / "shared" / "data" / "fewshot-list"
needs_list = pytest.mark.skipif(not LIST_DIR.is_dir(), reason=f"the LiST splits are not at {LIST_DIR} (../shared)")
# A 30-row prompt task that needs no ../shared: the local fixture through SST-2's template.
LOCAL = [
    "task=local",
    f"task.data_files.train={FIXTURES / 'local' / 'sentiment.csv'}",
    "task.label_field=sentiment",
    "task.metrics=[accuracy]",
    "task.prompt.template='*cls**sent_0*_It_was*mask*.*sep+*'",
    "task.prompt.label_words=[terrible,okay,great]",
]
SHORT = ["train.max_steps=2", "train.batch_size=4", "train.eval_every_epoch=false"]
METHODS = ["full", "head", "bitfit", "houlsby", "list_adapter", "prompt_tuning", "adamix_list"]

# What each method trains and keeps at inference on a prompt head with 3 label words, by hand from the tiny configs
# (hidden 32, 2 layers). RoBERTa: LM head = dense 32x32+32, LayerNorm 64, vocabulary bias 30,522 = 31,642, plus the
# label words' untied rows 3x32 (LiST); backbone = embeddings 30,522x32 + 514x32 + 32 + 64 and per layer attention
# 4x(32x32+32), FFN 32x64+64 + 64x32+32, two LayerNorms = 1,010,336. GPT-2: its untied LM head is in the backbone
# (50,257x32, no bias), so only the label rows 3x32 train beside a method; backbone = 1,650,080 + 1,608,224.
# Per method: biases of the encoder (RoBERTa per layer 4x32 + 64 + 32 + two LayerNorm biases, + the embeddings'
# LayerNorm = 608; GPT-2 per layer 32 + 96 + 32 + 32 + 128 + 32, + ln_f = 736); Houlsby dim 8, two per layer,
# (32x8+8) + (8x32+32) each = 2,208; LiST adapter dim 128 without biases, 2 x (32x128 + 128x32) x 2 = 32,768;
# 10 soft prompt tokens x 32 = 320; AdaMix-LiST, 4 down-projections and one shared up per site, 2 x 2 x 5 x 4,096 =
# 81,920 trained and one merged LiST adapter (32,768) at inference; full fine-tuning trains the backbone and the
# RoBERTa LM head (its decoder weight is the tied embedding).
HEAD = {"tiny-roberta": 31_642 + 96, "tiny-gpt2": 96}
BACKBONE = {"tiny-roberta": 1_010_336, "tiny-gpt2": 1_650_080 + 1_608_224}
INFERENCE = {
    "head": {"tiny-roberta": 0, "tiny-gpt2": 0},
    "bitfit": {"tiny-roberta": 608, "tiny-gpt2": 736},
    "houlsby": {"tiny-roberta": 2_208, "tiny-gpt2": 2_208},
    "list_adapter": {"tiny-roberta": 32_768, "tiny-gpt2": 32_768},
    "prompt_tuning": {"tiny-roberta": 320, "tiny-gpt2": 320},
}


def expected_params(model: str, method: str) -> dict[str, int]:
    backbone = BACKBONE[model]
    if method == "full":
        trainable = backbone + (31_642 if model == "tiny-roberta" else 0)
        return {"trainable": trainable, "inference": backbone, "backbone": backbone}
    if method == "adamix_list":
        return {"trainable": 81_920 + HEAD[model], "inference": 32_768, "backbone": backbone}
    inference = INFERENCE[method][model]
    return {"trainable": inference + HEAD[model], "inference": inference, "backbone": backbone}


def _plan(compose_run, *overrides):
    return run(compose_run("model=roberta-large", "model.pretrained=false", "dry_run=true", *overrides)).record


def test_list_adapter_counts_on_roberta_large(compose_run):
    """LiST adapter: 2 x (1024 x 128 + 128 x 1024) x 24 = 12,582,912, plus the LM head 1,101,913 (dense, LayerNorm,
    vocabulary bias; the tied decoder weight is not counted) and the label words' own rows, 2 x 1024 (LiST's
    count_params counts its untied decoder as #labels x hidden). A dry run needs no tokenizer (meta shapes)."""
    head_size = 1_101_913 + 2 * 1024
    params = _plan(compose_run, "task=fewshot_sst2", "peft=list_adapter")["params"]
    assert params == {"trainable": 12_582_912 + head_size, "inference": 12_582_912, "backbone": 354_310_144}
    head = _plan(compose_run, "task=fewshot_sst2", "peft=head")["params"]
    assert (head["trainable"], head["inference"]) == (head_size, 0)
    tied = _plan(compose_run, "task=fewshot_sst2", "peft=head", "task.prompt.label_rows=tied")["params"]
    assert tied["trainable"] == 1_101_913
    adamix = _plan(compose_run, "task=fewshot_sst2", "peft=adamix_list")["params"]
    # 4 down-projections and one shared up-projection per site; one merged LiST adapter at inference
    assert (adamix["trainable"], adamix["inference"]) == (4 * 6_291_456 + 6_291_456 + head_size, 12_582_912)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-gpt2"])
def test_each_method_on_a_prompt_head_trains_what_it_should(compose_run, model, method):
    planned = run(compose_run(*LOCAL, f"model={model}", f"peft={method}", "fewshot.k=24", "dry_run=true")).record
    assert planned["params"] == expected_params(model, method)


@pytest.mark.parametrize("model", ["tiny-roberta", pytest.param("tiny-gpt2", marks=pytest.mark.slow)])
def test_adamix_prompt_run_trains_merges_and_reloads_to_the_same_metrics(compose_run, model):
    overrides = [*LOCAL, f"model={model}", "peft=adamix_list", "fewshot.k=24", *SHORT, "train.log_every_steps=1"]
    trained = run(compose_run(*overrides))
    record = trained.record
    assert record["status"] == "completed" and record["primary_metric"] == "validation/accuracy"
    assert 0 <= record["metrics"]["validation/accuracy"] <= 1
    logged = [json.loads(line) for line in (trained.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [row["train/loss"] for row in logged if "train/loss" in row]
    assert len(losses) == 2 and losses[0] != losses[1]  # it trained: two optimizer steps
    saved = trained.run_dir / "adapter"
    config = json.loads((saved / "adapter_config.json").read_text())
    assert (config["merged"], config["num_experts"], config["experts"]) == (True, 1, 4)  # merged, experts kept
    assert (saved / "experts.safetensors").is_file()
    reloaded = run(compose_run(*overrides, "eval_only=true", f"adapter_path={saved}"))
    assert reloaded.record["metrics"] == record["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-gpt2"])
def test_every_method_runs_on_a_prompt_head(compose_run, model, method):
    if (model, method) == ("tiny-gpt2", "head"):  # GPT-2's LM head is its vocabulary projection alone: with the
        # tied matrix kept frozen (label_rows=tied) nothing trains; LiST's untied label rows (the default) train
        with pytest.raises(UserError, match="peft=head trains no parameter of model=tiny-gpt2"):
            run(
                compose_run(
                    *LOCAL, f"model={model}", f"peft={method}", "fewshot.k=24", *SHORT, "task.prompt.label_rows=tied"
                )
            )
    trained = run(compose_run(*LOCAL, f"model={model}", f"peft={method}", "fewshot.k=24", *SHORT))
    assert trained.record["status"] == "completed"
    assert trained.record["params"] == expected_params(model, method)
    saved = trained.run_dir / ("model" if method == "full" else "adapter")
    reloaded = run(
        compose_run(
            *LOCAL,
            f"model={model}",
            f"peft={method}",
            "fewshot.k=24",
            *SHORT,
            "eval_only=true",
            f"adapter_path={saved}",
        )
    )
    assert reloaded.record["metrics"] == trained.record["metrics"]


@needs_list
@pytest.mark.slow  # ~40 s on the shared machine; .ci/run runs this very cell (make tables PROFILE=smoke SEEDS=1)
def test_a_table6_smoke_cell_runs_through_the_cli(tmp_path):
    """The exact smoke cell of conf/table/table6.yaml (MNLI, AdaMix), as `adamix-run` runs it."""
    command = [
        sys.executable,
        "-m",
        "adamix_runner",
        "task=fewshot_mnli",
        "model=tiny-roberta",
        "peft=adamix_list",
        f"fewshot.data_dir={LIST_DIR}",
        "fewshot.k=30",
        "train.batch_size=4",
        "train.warmup_ratio=0.0",
        "train.eval_every_epoch=false",
        "train.select=last",
        "data.max_seq_length=128",
        "train.lr=5e-6",
        "train.epochs=400",
        "train.weight_decay=0.1",
        "train.max_steps=2",
        "data.max_eval_samples=16",
        f"output_root={tmp_path}",
        "logger=none",
        "seed=2",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    (results,) = tmp_path.glob("runs/fewshot_mnli/tiny-roberta/adamix/*/seed2/results.json")
    record = json.loads(results.read_text())
    assert record["status"] == "completed" and "validation_matched/accuracy" in record["metrics"]
    assert "30-3" in record["notes"]["eval_set"] and "CLUES" in record["notes"]["eval_set"]  # seed 2 -> split 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["task.prompt.template='*cls**sent_0*_It_was.*sep+*'"], "exactly one \\*mask\\*"),
        (["train.select=best"], "no validation set"),
        (["task.prompt.label_words=[great]"], "one word per class"),
        (["fewshot.k=0"], "fewshot.k must be > 0"),
    ],
)
def test_bad_prompt_input_is_refused_before_loading(compose_run, overrides, message):
    with pytest.raises(UserError, match=message):
        run(compose_run("task=fewshot_sst2", "model=tiny-roberta", *overrides))


def test_prompt_tuning_needs_a_prompt_task_and_causal_lms_a_mask_after_the_sentences(compose_run):
    with pytest.raises(UserError, match="prompt_tuning needs a prompt task"):
        run(compose_run("task=sst2", "model=tiny-roberta", "peft=prompt_tuning"))
    with pytest.raises(UserError, match="sentence after \\*mask\\*"):
        run(compose_run(*LOCAL, "task.prompt.template='*sent_0**mask*_says_*+sent_0*'", "model=tiny-gpt2"))


def test_missing_split_folder_names_what_is_there(compose_run):
    with pytest.raises(UserError, match=r"few-shot split folder .* not found"):
        run(compose_run("task=fewshot_sst2", "model=tiny-roberta", f"fewshot.data_dir={LIST_DIR}", "fewshot.k=16"))


def test_offline_hub_sampling_names_the_local_alternatives(compose_run):
    with pytest.raises(OfflineError, match=r"task.data_dir=.*fewshot.data_dir=<a LiST data/clue folder>"):
        run(compose_run("task=fewshot_rte", "model=tiny-roberta", "train.max_steps=1"))
