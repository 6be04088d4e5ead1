"""Backbone and tokenizer: from the hub, from a local folder, or random from the architecture (no download)."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from adamix_runner import hub
from adamix_runner.adaptation.targets import HEAD_MODULES
from adamix_runner.errors import UserError

_REPORT_ROW = re.compile(r"^([\w.]+)\s*\|\s*([A-Z]+)\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADS = {head for heads in HEAD_MODULES.values() for head in heads}


def expected_load_report(message: str) -> bool:
    """A LOAD REPORT that only lists the classification head as MISSING: the head a fine-tuning run initialises
    on purpose. Any other row (a missing backbone weight, an unexpected or mismatched key) is a real warning."""
    if "LOAD REPORT" not in message:
        return False
    rows = [_REPORT_ROW.match(line) for line in _ANSI.sub("", message).splitlines()]
    rows = [row.groups() for row in rows if row and row.group(2) != "Status"]
    return bool(rows) and all(status == "MISSING" and key.split(".")[0] in _HEADS for key, status in rows)


class _DropExpectedReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not expected_load_report(record.getMessage())


@contextmanager
def _quiet_head_report():
    """transformers' loading logger, without the report of the newly initialised head (it keeps real ones)."""
    logger, quiet = logging.getLogger("transformers.modeling_utils"), _DropExpectedReport()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _source(model_cfg) -> str:
    """A local path when given (it must exist), else the hub id."""
    if model_cfg.path:
        path = Path(model_cfg.path)
        if not path.exists():
            raise UserError(f"model.path={model_cfg.path} does not exist; pass the folder that holds config.json.")
        if not (path / "config.json").is_file() and path.suffix != ".gguf":  # a .gguf file: models_lm.py
            what = "a folder without config.json" if path.is_dir() else "a file"
            raise UserError(f"model.path={model_cfg.path} is {what}; pass the folder that holds config.json.")
        return str(path)
    return model_cfg.hub_id


def _from_hub_or_cache(loader, source: str, what: str, alternative: str, **kwargs):
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
    config = _from_hub_or_cache(
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


def load_model(model_cfg, num_labels: int, *, on_meta: bool = False) -> PreTrainedModel:
    """The sequence-classification model with a fresh head; `on_meta` builds shapes only (dry runs)."""
    if model_cfg.pretrained:
        source = _source(model_cfg)
        with _quiet_head_report():
            return _from_hub_or_cache(
                AutoModelForSequenceClassification.from_pretrained,
                source,
                f"model '{source}'",
                "model.path=/path/to/local/model (or model.pretrained=false for a random init)",
                **(pretrained_config(model_cfg, source, num_labels=num_labels) or {"num_labels": num_labels}),
                trust_remote_code=model_cfg.trust_remote_code,
                dtype=torch.float32,  # a checkpoint saved in fp16/bf16 would otherwise train (and scale) in it
                **attention_kwargs(model_cfg),
            )
    config = architecture_config(model_cfg, num_labels=num_labels)
    with torch.device("meta") if on_meta else nullcontext():
        return AutoModelForSequenceClassification.from_config(config, **attention_kwargs(model_cfg))


def load_tokenizer(model_cfg):
    source = model_cfg.tokenizer or _source(model_cfg)
    if not source:
        raise UserError(f"model '{model_cfg.name}' names no tokenizer: set model.tokenizer=... or model.path=...")
    return _from_hub_or_cache(
        AutoTokenizer.from_pretrained,
        source,
        f"tokenizer '{source}'",
        "model.path=/path/to/local/model (or model.tokenizer=/path/to/tokenizer for the tokenizer alone)",
        trust_remote_code=model_cfg.trust_remote_code,
    )
