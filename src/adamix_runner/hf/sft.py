"""AdaMixSFTTrainer: TRL's SFTTrainer with AdaMix's loss, checkpoints and exports (:mod:`.trainer`).

TRL is optional (``pip install adamix-runner[trl]``; CI pins it in requirements-ci.txt). The token-level loss is
the runner's ``lm_adamix_loss`` on the logits: SFTTrainer's fused LM head (per-token log-probabilities without
logits) is not used, since the consistency term needs both views' full distributions.
"""

from __future__ import annotations

try:
    from trl import SFTTrainer
except ImportError as error:  # pragma: no cover - exercised only where trl is absent
    raise ImportError("AdaMixSFTTrainer needs TRL: pip install 'adamix-runner[trl]' (or trl==1.16.0)") from error

from adamix_runner.hf.trainer import AdaMixTrainerMixin


class AdaMixSFTTrainer(AdaMixTrainerMixin, SFTTrainer):
    """``trl.SFTTrainer`` training AdaMix on a causal LM (the model carries AdaMix, or pass ``adamix_config``)."""
