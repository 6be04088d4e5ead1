"""adamix-runner: AdaMix (mixture-of-adaptations) fine-tuning, merged into one adapter at the end."""

__version__ = "0.1.0"
