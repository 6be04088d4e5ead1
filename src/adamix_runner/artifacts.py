"""The adapter folder a run leaves behind (safetensors + adapter_config.json); the run folder: run_folder.py.

Adapter folder layout (format 1):
  adaptation.safetensors   every declared adaptation parameter under its module path; stacked expert tensors keep
                           their leading expert dimension ([M, out, in], [M, out]); M = 1 once merged
  head.safetensors         the classification head, trained with the adapter and always saved with it
  adapter_config.json      {"format": 1, "peft": {...}, "merged": bool, "num_experts": M saved, "model": {...},
                           "task": {"name", "num_labels", "label_names"}, "experts": M unmerged or absent}
  experts.safetensors      AdaMix runs saved merged only: the unmerged mixture (every expert, the layout of
                           adaptation.safetensors before the merge), so that a finished run can be evaluated under
                           another inference rule (random, fixed, ensemble: `adamix-evaluate`) without retraining;
                           its mean over the expert dimension is adaptation.safetensors

Full fine-tuning has no adapter: its run folder holds `model/` instead, the whole model as `save_pretrained`
writes it (config.json + model.safetensors), which any transformers code loads, plus the same metadata as
`adamix_run.json` (not adapter_config.json, which transformers would take for a PEFT adapter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from adamix_runner.adaptation import (
    adaptation_state_dict,
    head_state_dict,
    load_adaptation_state_dict,
    load_head_state_dict,
)
from adamix_runner.errors import UserError
from adamix_runner.run_folder import read_json, write_json_atomic

ADAPTER_FORMAT = 1
ADAPTER_CONFIG = "adapter_config.json"
ADAPTATION_FILE = "adaptation.safetensors"
HEAD_FILE = "head.safetensors"
EXPERTS_FILE = "experts.safetensors"
FULL_MODEL_CONFIG = "adamix_run.json"


def _contiguous(state):
    return {name: tensor.detach().contiguous().cpu() for name, tensor in state.items()}


def save_adapter(model, folder: Path, meta: dict[str, Any], experts: dict | None = None) -> None:
    """Adapter weights, head and config; the config is written last so that it marks a complete folder.

    ``experts``: the unmerged adaptation state of a mixture that ``model`` holds merged (experts.safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_contiguous(adaptation_state_dict(model)), str(folder / ADAPTATION_FILE))
    if experts is not None:
        save_file(_contiguous(experts), str(folder / EXPERTS_FILE))
    save_file(_contiguous(head_state_dict(model)), str(folder / HEAD_FILE))
    write_json_atomic(folder / ADAPTER_CONFIG, {"format": ADAPTER_FORMAT, **meta})


def save_full_model(model, folder: Path, meta: dict[str, Any]) -> None:
    """The whole fine-tuned model in the standard transformers layout, metadata last."""
    model.save_pretrained(str(folder))
    write_json_atomic(folder / FULL_MODEL_CONFIG, {"format": ADAPTER_FORMAT, **meta})


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """The metadata of an adapter/ folder, or of the model/ folder a full fine-tuning run wrote."""
    config = read_json(folder / ADAPTER_CONFIG) or read_json(folder / FULL_MODEL_CONFIG)
    if config is None:
        raise UserError(
            f"adapter_path={folder} has no {ADAPTER_CONFIG}; pass the adapter/ folder (or, for peft=full, the "
            "model/ folder) of a completed run."
        )
    if config.get("format") != ADAPTER_FORMAT:
        raise UserError(f"{folder}: unsupported adapter format {config.get('format')!r}.")
    return config


def has_experts(saved: dict[str, Any], folder: Path) -> bool:
    """Whether a merged adapter folder also keeps its unmerged experts (experts.safetensors)."""
    return bool(saved.get("merged")) and "experts" in saved and (folder / EXPERTS_FILE).exists()


def load_adapter(model, folder: Path, experts: bool = False) -> None:
    """Strict load: every key and shape must match the model built from the same config; ``experts`` loads the
    unmerged mixture (experts.safetensors) into a model built with every expert."""
    for name, load in (
        (EXPERTS_FILE if experts else ADAPTATION_FILE, load_adaptation_state_dict),
        (HEAD_FILE, load_head_state_dict),
    ):
        try:
            load(model, load_file(str(folder / name)))
        except (OSError, SafetensorError, ValueError) as error:
            raise UserError(
                f"Cannot load the adapter in {folder}: {folder / name} is missing, corrupt or does not fit this "
                f"model ({error}); restore it from the run, or retrain."
            ) from error
