"""Backbones and tokenizers, one module per task kind over one loader.

``load``: `load_pretrained(auto_class, model_cfg, on_meta, **config_keys)`, the only path to a backbone (hub id,
local folder or `.gguf` file, hub cache, or a random init from the YAML's architecture), `model.config_overrides`
set on every path; ``encoder``: sequence classification; ``causal_lm``: causal LMs for generation; ``prompt``:
`PromptModel`, a masked or causal LM read at one position; ``tokenizer_assets``: the offline GPT-2 BPE.

Nothing is imported here, so that `python -m adamix_runner.models.tokenizer_assets` runs the module once.
"""
