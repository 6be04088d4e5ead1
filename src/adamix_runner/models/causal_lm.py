"""Causal LMs for NLG, through the shared loader (load.py: a hub id, a local folder, a `.gguf` file, or random).

The tokenizer is, first found: `model.tokenizer`, `model.path`, the offline GPT-2 BPE for `model_type: gpt2` (every
GPT-2 size shares that vocabulary: tokenizer_assets.py), then `model.hub_id`.
"""

from __future__ import annotations

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from adamix_runner.errors import UserError
from adamix_runner.models.load import from_hub_or_cache, load_pretrained, split_gguf
from adamix_runner.models.tokenizer_assets import gpt2_tokenizer_path


def load_causal_lm(model_cfg, *, on_meta: bool = False) -> PreTrainedModel:
    """The LM with its own (tied) LM head, in float32; `on_meta` builds shapes only (dry runs)."""
    return load_pretrained(AutoModelForCausalLM, model_cfg, on_meta=on_meta)


def load_lm_tokenizer(model_cfg):
    """The tokenizer that fits `load_causal_lm(model_cfg)` (see the module docstring for the order)."""
    source = model_cfg.tokenizer or model_cfg.path
    if not source and dict(model_cfg.architecture).get("model_type") == "gpt2":
        source = str(gpt2_tokenizer_path())
    source = source or model_cfg.hub_id
    if not source:
        raise UserError(f"model '{model_cfg.name}' names no tokenizer: set model.tokenizer=... or model.path=...")
    source, extra = split_gguf(str(source))
    return from_hub_or_cache(
        AutoTokenizer.from_pretrained,
        source,
        f"tokenizer '{source}'",
        "model.tokenizer=/path/to/tokenizer (a folder with tokenizer.json or vocab files)",
        trust_remote_code=model_cfg.trust_remote_code,
        **extra,
    )
