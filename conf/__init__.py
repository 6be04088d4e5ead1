"""The Hydra config tree. A package only so that a wheel installs it as `adamix_runner.conf` (see pyproject.toml)."""
