"""Each task kind's pipeline module fills the `Pipeline` protocol that run.py and build.py call: same names, same
parameters (a renamed or reordered parameter would only fail at that kind's first run)."""

from __future__ import annotations

import inspect

import pytest

from adamix_runner.pipelines import Pipeline, for_kind

MEMBERS = ("load_model", "load_tokenizer", "prepare")


@pytest.mark.parametrize("kind", ["classification", "generation", "prompt"])
def test_each_kind_fills_the_pipeline_protocol(kind):
    pipeline = for_kind(kind)
    assert pipeline.__name__ == f"adamix_runner.pipelines.{kind}"
    for name in MEMBERS:
        declared = list(inspect.signature(getattr(Pipeline, name)).parameters.values())[1:]  # without self
        filled = list(inspect.signature(getattr(pipeline, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in filled] == [(p.name, p.kind, p.default) for p in declared]
