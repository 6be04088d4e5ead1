"""adamix-runner: AdaMix (mixture-of-adaptations) fine-tuning, merged into one adapter at the end.

The library face (docs/USE_IN_YOUR_CODE.md): ``from adamix_runner import AdaMixConfig, add_adamix, merge_adamix``.
Those names load lazily, so that torch-free parts (the report) import without the training stack.

The package, by role (docs/ARCHITECTURE.md has every file):
- faces: cli/ (adamix-run, adamix-evaluate, adamix-export), tables/ (adamix-table), report/ (adamix-report),
  api.py and hf/ (the library in the user's own code);
- config: config/ (schema, checks, compose);
- the run story: run.py over pipelines/, which draw on tasks/, models/, adaptation/, training/, evaluation/;
  build.py rebuilds a finished run's model, evaluate.py re-evaluates it under other inference rules;
- where things come from: sources/ (the hub, PyPI sdists, the cache);
- what a run leaves: run_folder.py (the layout and identity), artifacts.py, export.py, tracking.py;
- errors.py: the mistakes a user can fix.
"""

__version__ = "0.1.0"

_API = ("AdaMixConfig", "add_adamix", "merge_adamix", "consistency_loss", "save_adamix", "load_adamix")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from adamix_runner import api

        return getattr(api, name)
    raise AttributeError(f"module 'adamix_runner' has no attribute {name!r}")
