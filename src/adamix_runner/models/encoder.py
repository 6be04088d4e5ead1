"""The sequence-classification backbone (a fresh head) and its tokenizer, through the shared loader (load.py)."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager

from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from adamix_runner.adaptation.targets import HEAD_MODULES
from adamix_runner.errors import UserError
from adamix_runner.models.load import from_hub_or_cache, load_pretrained, source

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


def load_model(model_cfg, num_labels: int, *, on_meta: bool = False) -> PreTrainedModel:
    """The sequence-classification model with a fresh head; `on_meta` builds shapes only (dry runs)."""
    with _quiet_head_report():
        return load_pretrained(AutoModelForSequenceClassification, model_cfg, on_meta=on_meta, num_labels=num_labels)


def load_tokenizer(model_cfg):
    where = model_cfg.tokenizer or source(model_cfg)
    if not where:
        raise UserError(f"model '{model_cfg.name}' names no tokenizer: set model.tokenizer=... or model.path=...")
    return from_hub_or_cache(
        AutoTokenizer.from_pretrained,
        where,
        f"tokenizer '{where}'",
        "model.path=/path/to/local/model (or model.tokenizer=/path/to/tokenizer for the tokenizer alone)",
        trust_remote_code=model_cfg.trust_remote_code,
    )
