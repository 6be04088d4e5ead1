"""The run folder's hash is taken over the resolved config (a survivor of `make mutate`, docs/TESTING.md): a value
that reaches the run through an interpolation moves the run to another folder when it changes."""

from __future__ import annotations

from adamix_runner.cli import compose_config
from adamix_runner.config import config_hash, run_dir


def test_a_value_resolved_from_the_environment_is_part_of_the_run_identity(monkeypatch):
    monkeypatch.setenv("ADAMIX_TEST_MODEL", "/models/a")
    cfg = compose_config("model.path=${oc.env:ADAMIX_TEST_MODEL}")
    first, folder = config_hash(cfg), run_dir(cfg)
    monkeypatch.setenv("ADAMIX_TEST_MODEL", "/models/b")  # another model behind the same command line
    assert config_hash(cfg) != first and run_dir(cfg) != folder
    monkeypatch.setenv("ADAMIX_TEST_MODEL", "/models/a")
    assert config_hash(cfg) == first
