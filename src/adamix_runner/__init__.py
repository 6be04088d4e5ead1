"""adamix-runner: AdaMix (mixture-of-adaptations) fine-tuning, merged into one adapter at the end.

The library face (docs/USE_IN_YOUR_CODE.md): ``from adamix_runner import AdaMixConfig, add_adamix, merge_adamix``.
Those names load lazily, so that torch-free parts (the report) import without the training stack.
"""

__version__ = "0.1.0"

_API = ("AdaMixConfig", "add_adamix", "merge_adamix", "consistency_loss", "save_adamix", "load_adamix")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from adamix_runner import api

        return getattr(api, name)
    raise AttributeError(f"module 'adamix_runner' has no attribute {name!r}")
