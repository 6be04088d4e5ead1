"""The NLG path through run(cfg): tiny GPT-2 with the real BPE, train, merge, beam decode, score, files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from accelerate.utils import set_seed
from peft import PeftModel

from adamix_runner.build import rebuild_run
from adamix_runner.cli.export import export_run
from adamix_runner.errors import UserError
from adamix_runner.models.causal_lm import load_causal_lm
from adamix_runner.run import run
from tests.conftest import FIXTURES

E2E = ["task=e2e", f"task.data_dir={FIXTURES / 'nlg' / 'e2e'}", "model=tiny-gpt2"]
FAST = [
    "train.max_steps=3",
    "train.batch_size=4",
    "train.lr=1e-3",
    "train.eval_every_epoch=false",
    "generation.num_beams=2",
    "generation.max_new_tokens=8",
]


@pytest.mark.slow  # ~21 s; make test-slow runs it, and .ci/run's smoke Table 3 runs E2E AdaMix-LoRA end to end
def test_e2e_adamix_lora_trains_merges_decodes_and_scores(compose_run):
    result = run(compose_run(*E2E, "peft=adamix_lora", *FAST))
    metrics = result.record["metrics"]
    assert set(metrics) == {
        "test/bleu",
        "test/nist",
        "test/meteor",
        "test/rouge_l",
        "test/cider",
        "test/empty_predictions",
    }
    assert result.record["primary_metric"] == "test/bleu"
    predictions = (result.run_dir / "predictions" / "test.pred.txt").read_text().splitlines()
    rows = [json.loads(line) for line in (result.run_dir / "predictions" / "test.jsonl").read_text().splitlines()]
    assert len(predictions) == len(rows) == 6  # one line per test MR of the fixture
    assert all(len(row["references"]) >= 2 for row in rows)
    config = json.loads((result.run_dir / "adapter" / "adapter_config.json").read_text())
    assert (config["merged"], config["num_experts"]) == (True, 1)
    losses = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in losses if "train/loss" in row] == [3]


def test_nlg_lora_run_exports_to_peft_with_equal_logits(compose_run):
    trained = run(compose_run(*E2E, "peft=adamix_lora", *FAST, "task.metrics=[bleu]", "train.lr=0.05"))
    folder = export_run(trained.run_dir, "peft")
    cfg, ours = rebuild_run(trained.run_dir)
    set_seed(cfg.seed)  # the same random backbone the run started from
    theirs = PeftModel.from_pretrained(load_causal_lm(cfg.model), str(folder)).eval()
    ids = torch.arange(5, 25).view(2, 10)
    with torch.no_grad():
        expected, got = ours(ids).logits, theirs(ids).logits
        with theirs.disable_adapter():
            without_lora = theirs(ids).logits
    assert torch.allclose(expected, got, atol=1e-5, rtol=0)
    assert not torch.allclose(got, without_lora, atol=1e-4)


def test_webnlg_reports_seen_and_unseen(compose_run):
    webnlg = ["task=webnlg", f"task.data_dir={FIXTURES / 'nlg' / 'webnlg'}", "model=tiny-gpt2", "peft=lora"]
    result = run(compose_run(*webnlg, *FAST, "task.metrics=[bleu,ter]"))
    keys = set(result.record["metrics"])
    assert {"test/bleu", "test/ter", "test_seen/bleu", "test_unseen/bleu"} <= keys


@pytest.mark.parametrize(
    ("peft", "extra", "inference"),
    [("adamix_lora", [], 393_216), ("adamix", ["peft.adapter_dim=8", "peft.num_experts=8"], 417_984)],
)
def test_gpt2_medium_plans_the_papers_param_counts(compose_run, peft, extra, inference):
    planned = run(
        compose_run("task=e2e", "model=gpt2-medium", "model.pretrained=false", f"peft={peft}", *extra, "dry_run=true")
    )
    assert planned.record["params"]["inference"] == inference


def test_a_generation_task_refuses_an_encoder_only_model(compose_run):
    with pytest.raises(UserError, match="task=e2e generates text, but model=bert-base is an encoder-only bert"):
        run(compose_run("task=e2e", "model=bert-base"))


@pytest.mark.slow  # over 20 s (subprocesses); .ci/run runs make test-slow
def test_two_processes_decode_shares_and_write_the_single_process_predictions(tmp_path):
    """Under DDP each rank beam-searches its share of the inputs and rank 0 writes them all, in input order."""
    no_dropout = [f"+model.architecture.{key}=0" for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop")]
    common = [*E2E, "peft=adamix_lora", *FAST, *no_dropout, "task.metrics=[bleu,ter]", "train.cpu=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    predictions = []
    for launcher, batch, root in (([sys.executable], 4, "one"), (torchrun, 2, "two")):
        command = [*launcher, "-m", "adamix_runner", *common, f"train.batch_size={batch}", "logger=none"]
        done = subprocess.run([*command, f"output_root={tmp_path / root}"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        (folder,) = (tmp_path / root).glob("runs/*/*/*/*/seed0")
        predictions.append((folder / "predictions" / "test.pred.txt").read_text().splitlines())
    assert len(predictions[0]) == 6
    assert predictions[1] == predictions[0]
