"""Shared test set-up: offline by construction, configs composed from the real tree, outputs in tmp folders."""

from __future__ import annotations

import os

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_key] = "1"
os.environ.setdefault("WANDB_MODE", "offline")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from adamix_runner.config.compose import compose_config  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def compose_run(tmp_path):
    """compose_config with outputs under the test's tmp folder and quiet logging."""

    def _compose(*overrides: str):
        return compose_config(f"output_root={tmp_path}", "logger=none", *overrides)

    return _compose
