"""What a run leaves behind: results.json (atomic) and the adapter folder (safetensors + adapter_config.json).

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

import json
import os
import tempfile
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

ADAPTER_FORMAT = 1
ADAPTER_CONFIG = "adapter_config.json"
EXPERTS_FILE = "experts.safetensors"
FULL_MODEL_CONFIG = "adamix_run.json"


def write_json_atomic(path: Path, record: dict[str, Any]) -> None:
    """Write to a temporary sibling, then rename: readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(record, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error}); remove or restore it.") from error


def _contiguous(state):
    return {name: tensor.detach().contiguous().cpu() for name, tensor in state.items()}


def save_adapter(model, folder: Path, meta: dict[str, Any], experts: dict | None = None) -> None:
    """Adapter weights, head and config; the config is written last so that it marks a complete folder.

    ``experts``: the unmerged adaptation state of a mixture that ``model`` holds merged (experts.safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_contiguous(adaptation_state_dict(model)), str(folder / "adaptation.safetensors"))
    if experts is not None:
        save_file(_contiguous(experts), str(folder / EXPERTS_FILE))
    save_file(_contiguous(head_state_dict(model)), str(folder / "head.safetensors"))
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
        (EXPERTS_FILE if experts else "adaptation.safetensors", load_adaptation_state_dict),
        ("head.safetensors", load_head_state_dict),
    ):
        try:
            load(model, load_file(str(folder / name)))
        except (OSError, SafetensorError, ValueError) as error:
            raise UserError(
                f"Cannot load the adapter in {folder}: {folder / name} is missing, corrupt or does not fit this "
                f"model ({error}); restore it from the run, or retrain."
            ) from error
