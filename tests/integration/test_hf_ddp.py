"""AdaMixTrainer under torchrun (two CPU processes, gloo DDP): every rank draws the same experts, ends with the same
weights, and only rank 0 writes the exports.

The launch is real: this file, run as a script under torchrun, trains a tiny BERT with ``Router.draw`` wrapped to
record every training draw of its rank, then writes the draws and its merged weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

OUT = "ADAMIX_TEST_HF_DDP_OUT"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _probe(out: Path) -> None:
    from datasets import Dataset
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments, set_seed

    from adamix_runner import AdaMixConfig, add_adamix
    from adamix_runner.adaptation import Router, adaptation_state_dict
    from adamix_runner.hf import AdaMixTrainer

    draws: list[list[int]] = []
    original = Router.draw

    def recording(self, num_experts: int) -> list[int]:
        picked = original(self, num_experts)
        draws.append(picked)
        return picked

    Router.draw = recording
    set_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = add_adamix(BertForSequenceClassification(cfg), AdaMixConfig(num_experts=4, seed=3))
    ids = torch.randint(5, 50, (32, 8), generator=torch.Generator().manual_seed(0))
    data = Dataset.from_dict({"input_ids": ids.tolist(), "labels": (ids[:, 0] % 2).tolist()})
    args = TrainingArguments(str(out / "train"), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-2,
                             save_strategy="no", report_to=[], use_cpu=True, ddp_backend="gloo")  # fmt: skip
    AdaMixTrainer(model=model, args=args, train_dataset=data).train()
    rank = os.environ["RANK"]
    (out / f"draws{rank}.json").write_text(json.dumps(draws))
    save_file({k: v.contiguous() for k, v in adaptation_state_dict(model).items()}, str(out / f"weights{rank}.st"))


@pytest.mark.slow
def test_ranks_route_alike_end_alike_and_rank0_exports(tmp_path):
    env = {**os.environ, OUT: str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*TORCHRUN, __file__], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    draws = [json.loads((tmp_path / f"draws{rank}.json").read_text()) for rank in (0, 1)]
    assert len(draws[0]) >= 3 * 4 and draws[0] == draws[1]  # 3 steps x 4 LoRA layers with 4 A experts
    weights = [load_file(str(tmp_path / f"weights{rank}.st")) for rank in (0, 1)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert (tmp_path / "train" / "peft_lora" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "train" / "adamix" / "experts.safetensors").is_file()


if __name__ == "__main__":
    _probe(Path(os.environ[OUT]))
