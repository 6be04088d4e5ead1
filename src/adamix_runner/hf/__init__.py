"""transformers / PEFT / TRL integrations of the library face (docs/USE_IN_YOUR_CODE.md).

``trainer``: AdaMixTrainer (Trainer + the fused two-view loss, merge at the end, exports); ``sft``: the same over
TRL's SFTTrainer (optional ``trl``); ``peft_layer``: the unmerged AdaMix-LoRA as a PEFT custom LoRA layer.
"""

from adamix_runner.hf.trainer import AdaMixTrainer, AdaMixTrainerMixin

__all__ = ["AdaMixTrainer", "AdaMixTrainerMixin"]
