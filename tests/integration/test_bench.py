"""The benchmark harness runs end to end on tiny-bert and its model-FLOPs count follows the documented formula.

Timings are not asserted (they are read by people, docs/PERFORMANCE.md); what is asserted is that every variant,
ratio and the JSON record are produced, and that the FLOPs count feeding MFU is right.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from bench.flops import train_flops_per_token  # noqa: E402
from bench.variants import Options, build_backbone  # noqa: E402

from adamix_runner.adaptation import AdaptationSpec, apply  # noqa: E402


def test_bench_prints_every_variant_and_writes_its_record(tmp_path):
    command = [sys.executable, str(SCRIPTS / "bench.py"), "--backbone", "tiny-bert", "--reps", "1"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("tiny-bert-cpu-fp32-*.json")
    record = json.loads(path.read_text())
    assert len(record["train"]["median_s"]) == 9
    assert record["train"]["samples_per_s"]["single adapter, 2B batch"] > 0
    assert record["train"]["mfu"]["single adapter"] is None  # no peak known for a CPU
    assert len(record["infer"]["median_s"]) == 6
    assert record["data"]["polarity sentences"]["pad to max_seq_length"]["tokens_per_step"] == 32 * 128
    assert [row["ratio"] for row in record["targets"]][:2] == [
        "AdaMix no consistency / single adapter",
        "AdaMix with consistency / single adapter",
    ]
    assert "AdaMix, fused 2B consistency" in done.stdout


@pytest.fixture
def tiny_bert():
    return build_backbone(Options("tiny-bert", 2, 8, "cpu", "fp32", "sdpa", 16, 4, 8))


def test_full_fine_tuning_costs_six_flops_per_weight_plus_attention(tiny_bert):
    tiny_bert.requires_grad_(True)
    # hidden 32, intermediate 64, 2 layers: Q K V O + FFN in + FFN out per layer, pooler, 2-way head
    weights = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32 + 32 * 2
    assert train_flops_per_token(tiny_bert, seq_len=64) == 6 * weights + 3 * 4 * 2 * 64 * 32


def test_a_frozen_backbone_saves_the_weight_gradients_and_a_mixture_counts_one_expert(tiny_bert):
    apply(tiny_bert, AdaptationSpec("adamix", 16, 4, share="up"), seed=0)
    frozen = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32
    trained = 2 * (32 * 16 + 16 * 32) + 32 * 2  # one down and one up expert per layer, and the head
    assert train_flops_per_token(tiny_bert, seq_len=64) == 4 * frozen + 6 * trained + 3 * 4 * 2 * 64 * 32
