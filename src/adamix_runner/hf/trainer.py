"""AdaMixTrainer: transformers' Trainer with AdaMix's fused two-view loss, merge at the end and three exports.

The loss is the runner's (``training.losses.adamix_loss`` for classification logits [B, C],
``training.lm_losses.lm_adamix_loss`` for token logits [B, T, V]): one forward over the batch stacked twice, each
copy routed to its own experts, the task loss on the first view plus ``consistency_weight`` x symmetric KL.
Everything else is Trainer's own: gradient accumulation (the loss is a per-batch mean, divided by the accumulation
steps as ``adamix-run``'s loop does), mixed precision, DDP under ``accelerate launch``/``torchrun``, logging.

Checkpoints hold what trains (experts + head, the runner's adapter layout) and the routing generator
(``adamix_router.safetensors``); resuming restores both, so a resumed run equals an uninterrupted one. At the end of
``train()`` the mixtures are merged and ``output_dir`` gets ``adamix/`` (merged adapter + unmerged experts) and, for
AdaMix-LoRA, ``peft_lora/`` (loads with ``peft.PeftModel.from_pretrained``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer

from adamix_runner import api, artifacts
from adamix_runner.adaptation import load_adaptation_state_dict, load_head_state_dict, router_of
from adamix_runner.export import export_peft_lora
from adamix_runner.training.lm_losses import lm_adamix_loss
from adamix_runner.training.losses import adamix_loss, num_views

ROUTER_FILE = "adamix_router.safetensors"
ADAMIX_DIR = "adamix"
PEFT_DIR = "peft_lora"
PARTS = ("task_loss", "consistency_loss")


class AdaMixTrainerMixin:
    """The AdaMix parts of :class:`AdaMixTrainer`, to mix into any Trainer subclass (TRL's SFTTrainer: hf/trl.py).

    ``model`` must carry AdaMix (:func:`adamix_runner.add_adamix`), or pass ``adamix_config`` and it is added here.
    ``merge_at_end=False`` keeps the experts unmerged after ``train()`` and writes no exports.
    """

    def __init__(self, *args, adamix_config: api.AdaMixConfig | None = None, merge_at_end: bool = True, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if getattr(training_args, "gradient_checkpointing", False):
            raise ValueError(
                "AdaMixTrainer needs gradient_checkpointing=False: the experts are drawn from the model's own routing "
                "generator, so a checkpointed layer's recomputation would draw other experts than its forward did "
                "(TRL's SFTConfig turns it on by default)"
            )
        if adamix_config is not None:
            api.add_adamix(model, adamix_config)
        self.adamix_config = api.config_of(model)  # fails with what to do when the model has no AdaMix
        self.merge_at_end = merge_at_end
        super().__init__(*args, **kwargs)
        self.loss_is_scaled_for_ga = False  # a per-batch mean: Trainer divides it by the accumulation steps
        self._adamix_sums = {part: torch.zeros(()) for part in PARTS}
        self._adamix_count = 0

    # ---- the loss ----

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        features = {key: value for key, value in inputs.items() if key != "labels"}
        weight = self.adamix_config.consistency_weight
        # one view in eval, and for one-logit regression, whose KL is exactly 0 (the runner's rule)
        views = num_views(weight, getattr(self.model.config, "num_labels", 2)) if model.training else 1
        if views == 2:
            features = {key: _stacked(value, labels.shape[0]) for key, value in features.items()}
        with router_of(self.model).views(views):
            outputs = model(**features)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if logits.dim() == 2:
            loss, parts = adamix_loss(logits, labels, logits.shape[-1], weight, views)
        else:
            loss, parts = lm_adamix_loss(logits, {"labels": labels}, views, weight)
        if model.training:
            for part in PARTS:
                self._adamix_sums[part] = self._adamix_sums[part].to(parts[part].device) + parts[part]
            self._adamix_count += 1
        if return_outputs:
            first = {key: value[: labels.shape[0]] for key, value in outputs.items() if torch.is_tensor(value)}
            return loss, first
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Trainer's log, with the mean task and consistency losses since the last training log."""
        if "loss" in logs and self._adamix_count:
            for part in PARTS:
                logs[part] = float(self._adamix_sums[part]) / self._adamix_count
                self._adamix_sums[part] = torch.zeros(())
            self._adamix_count = 0
        super().log(logs, start_time)

    # ---- checkpoints: what trains, and the routing generator ----

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        api.save_adamix(self.model, output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)
        if self.args.should_save:
            save_file(router_of(self.model).state_dict(), os.path.join(output_dir, ROUTER_FILE))

    def _load_rng_state(self, checkpoint: str | None) -> None:
        super()._load_rng_state(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, ROUTER_FILE)
        if not os.path.isfile(path):
            raise ValueError(f"checkpoint {checkpoint} has no {ROUTER_FILE}: it was not written by AdaMixTrainer")
        router_of(self.model).load_state_dict(load_file(path))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        _load_trained(model if model is not None else self.model, Path(resume_from_checkpoint))

    def _load_best_model(self) -> None:
        _load_trained(self.model, Path(self.state.best_model_checkpoint))

    # ---- the end: merge and export ----

    def train(self, *args, **kwargs):
        output = super().train(*args, **kwargs)
        if self.merge_at_end:
            self.merge_and_export()
        return output

    def merge_and_export(self, output_dir: str | Path | None = None) -> Path:
        """Merge every mixture (in place) and write ``adamix/`` (merged + experts) and, for LoRA, ``peft_lora/``."""
        folder = Path(output_dir if output_dir is not None else self.args.output_dir)
        experts = api.unmerged_state(self.model) if self.adamix_config.num_experts > 1 else None
        api.merge_adamix(self.model)
        if self.args.should_save:
            api.save_adamix(self.model, folder / ADAMIX_DIR, experts)
            if self.adamix_config.kind == "lora":
                export_peft_lora(self.model, self.model.config, folder / PEFT_DIR)
        return folder


class AdaMixTrainer(AdaMixTrainerMixin, Trainer):
    """``transformers.Trainer`` that trains AdaMix; see the module docstring and docs/USE_IN_YOUR_CODE.md."""


def _stacked(value, batch_size: int):
    """A batch tensor stacked twice along dim 0; anything else (flags, shared tensors) as it is."""
    if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == batch_size:
        return torch.cat([value, value])
    return value


def _load_trained(model, folder: Path) -> None:
    """Strictly load the experts and head that ``_save`` wrote into ``folder``."""
    saved = artifacts.read_adapter_config(folder)
    if "api" not in saved:
        raise ValueError(f"{folder} is not an AdaMixTrainer checkpoint (no AdaMix adapter_config.json)")
    load_adaptation_state_dict(model, load_file(str(folder / "adaptation.safetensors")))
    load_head_state_dict(model, load_file(str(folder / "head.safetensors")))
