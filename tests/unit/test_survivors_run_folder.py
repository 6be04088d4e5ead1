"""The atomic JSON writes of the run folder, which mutation testing (`make mutate`, docs/TESTING.md) found unpinned: a
record lands in folders that do not exist yet, values JSON has no type for (paths) are written as text, and the
temporary file is a sibling of the target (not in the system temp folder, from where the rename could cross file
systems), so nothing is left beside the result; the fixed rule's evaluation names its expert."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from adamix_runner.run_folder import evaluation_names, write_json_atomic


def test_a_record_lands_in_new_folders_with_paths_as_text_and_nothing_beside_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-folder"))  # only dir=... can work
    target = tmp_path / "runs" / "rte" / "seed0" / "results.json"
    write_json_atomic(target, {"status": "completed", "adapter": tmp_path / "adapter"})
    assert json.loads(target.read_text()) == {"adapter": str(tmp_path / "adapter"), "status": "completed"}
    assert target.read_text().endswith("}\n") and [p.name for p in target.parent.iterdir()] == ["results.json"]
    assert isinstance(Path(json.loads(target.read_text())["adapter"]), Path)


def test_the_fixed_rule_names_the_expert_it_evaluates():
    assert evaluation_names(["fixed"], 4, 1, fixed_expert=2) == ["fixed-expert2"]
    assert evaluation_names(["fixed", "random"], 4, 2) == ["fixed-expert0", "random-seed0", "random-seed1"]
