"""A checkpoint saved in half precision loads in fp32 (gpu-readiness finding 3): transformers 5 would keep the
file's dtype, the adapters would copy it, and fp16's GradScaler refuses fp16 gradients."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from adamix_runner.config.compose import compose_config
from adamix_runner.models import encoder as models


def test_a_bf16_checkpoint_loads_in_fp32(tmp_path):
    cfg = compose_config("model=tiny-bert", "model.pretrained=false")
    models.load_model(cfg.model, 2).to(torch.bfloat16).save_pretrained(tmp_path)
    saved = OmegaConf.merge(cfg.model, {"path": str(tmp_path), "pretrained": True})
    loaded = models.load_model(saved, 2)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
