"""The report on run folders the runner itself wrote: two completed seeds and one that failed mid-run (a NaN
loss), as `adamix-run` leaves them, make a cell of two values marked `[1 failed]`."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

import adamix_runner.pipelines.classification as classification
from adamix_runner.report import cli as report_cli
from adamix_runner.report import grid
from adamix_runner.report.runs import scan
from adamix_runner.run import run
from adamix_runner.tables import declaration as tables_declaration
from tests.conftest import FIXTURES

TINY = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "peft=adamix",
    "train.max_steps=2",
    "train.batch_size=8",
    "train.eval_every_epoch=false",
    "logger=none",
]
TABLE = {
    "id": "real",
    "title": "runs the runner wrote",
    "kind": "grid",
    "profiles": {"paper": {"model": "tiny-bert"}},
    "tasks": ["mrpc"],
    "columns": {"mrpc": {"metric": "validation/accuracy", "label": "MRPC"}},
    "seeds": 3,
    "rows": [{"id": "adamix", "label": "AdaMix", "overrides": ["peft=adamix"], "match": {"peft.method": "adamix"}}],
}


def test_completed_and_failed_seeds_as_the_runner_writes_them(tmp_path, monkeypatch):
    from adamix_runner.config.compose import compose_config

    root = tmp_path / "out"
    accuracy = {}
    for seed in (0, 1):
        record = run(compose_config(f"output_root={root}", *TINY, f"seed={seed}")).record
        accuracy[seed] = record["metrics"]["validation/accuracy"] * 100
    real_loss = classification.adamix_loss
    monkeypatch.setattr(classification, "adamix_loss", lambda *a, **k: (real_loss(*a, **k)[0] * float("nan"), {}))
    with pytest.raises(Exception, match="non-finite loss"):
        run(compose_config(f"output_root={root}", *TINY, "seed=2"))
    failed = json.loads(next(root.glob("runs/*/*/*/*/seed2/results.json")).read_text())
    assert failed["status"] == "failed" and "config" not in failed  # the runner's failure record
    cell = grid.build(TABLE, scan(root)).rows[0].cells["mrpc"]
    assert cell.values == pytest.approx(accuracy)
    assert cell.statuses == {2: "failed"}
    folder = tmp_path / "tables"
    folder.mkdir()
    OmegaConf.save(OmegaConf.create(TABLE), folder / "real.yaml")
    monkeypatch.setattr(tables_declaration, "TABLE_DIR", folder)
    md = report_cli.report(["table=real", f"runs={root}", f"out={tmp_path / 'rep'}"])[0].read_text()
    assert f"{cell.stats.format()} [1 failed]" in md
