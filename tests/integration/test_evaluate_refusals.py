"""`adamix-evaluate` refuses what it cannot evaluate before any model is built, and `--overwrite` redoes present
evaluations: on one real (tiny) AdaMix run and copies of it that a user could pass by mistake."""

from __future__ import annotations

import json
import shutil

import pytest

from adamix_runner.cli.evaluate import main
from adamix_runner.run import run
from tests.conftest import FIXTURES

TINY = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "train.max_steps=2",
    "train.batch_size=8",
    "train.eval_every_epoch=false",
    "logger=none",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from adamix_runner.config.compose import compose_config

    root = tmp_path_factory.mktemp("runs")
    return run(compose_config(f"output_root={root}", *TINY)).run_dir


@pytest.fixture
def copy(finished, tmp_path):
    """A fresh copy of the finished run (so no test sees another's evaluations)."""

    def _copy(name: str, status: str | None = None):
        folder = tmp_path / name
        shutil.copytree(finished, folder)
        if status is not None:
            record = json.loads((folder / "results.json").read_text())
            (folder / "results.json").write_text(json.dumps({"status": status, "config_hash": record["config_hash"]}))
        return folder

    return _copy


def _refused(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_a_run_that_did_not_complete_is_refused(copy, capsys, status):
    folder = copy("run", status)
    err = _refused(capsys, [str(folder)])
    assert f"the run is not completed (status '{status}')" in err
    assert not (folder / "evaluations").exists()


@pytest.mark.parametrize("expert", ["4", "-1"])
def test_a_fixed_expert_outside_the_mixture_is_refused(copy, capsys, expert):
    folder = copy("run")
    err = _refused(capsys, [str(folder), "--rules", "fixed", "--fixed-expert", expert])
    assert f"--fixed-expert {expert} is not an expert of {folder} (0..3)" in err
    assert not (folder / "evaluations").exists()


def test_random_eval_seeds_below_one_is_refused(copy, capsys):
    folder = copy("run")
    err = _refused(capsys, [str(folder), "--random-eval-seeds", "0"])
    assert "--random-eval-seeds must be >= 1, got 0" in err
    assert not (folder / "evaluations").exists()


def test_every_folder_is_checked_before_the_first_is_evaluated(copy, capsys):
    good, bad = copy("good"), copy("bad", "failed")
    err = _refused(capsys, [str(good), str(bad), "--rules", "merge"])
    assert f"{bad}: the run is not completed" in err
    assert not (good / "evaluations").exists()  # refused before good was evaluated


def test_present_evaluations_are_kept_unless_overwrite(copy, capsys):
    folder = copy("run")
    main([str(folder), "--rules", "merge"])
    assert "1 evaluation(s) written" in capsys.readouterr().out
    path = folder / "evaluations" / "merge.json"
    real = json.loads(path.read_text())
    assert real["metrics"] == json.loads((folder / "results.json").read_text())["metrics"]  # the merged run itself
    path.write_text(json.dumps({**real, "metrics": {"validation/accuracy": -1.0}}))
    main([str(folder), "--rules", "merge"])
    assert "0 evaluation(s) written (all present)" in capsys.readouterr().out
    assert json.loads(path.read_text())["metrics"] == {"validation/accuracy": -1.0}
    main([str(folder), "--rules", "merge", "--overwrite"])
    assert "1 evaluation(s) written" in capsys.readouterr().out
    assert json.loads(path.read_text()) == real
