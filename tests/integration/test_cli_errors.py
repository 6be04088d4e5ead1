"""The CLI's own contract, through `cli.main()` as the console script calls it: bad input is one `error:` line and
exit 2 with no traceback; failures mid-run (NaN, full disk, bad checkpoint) exit 2 the same way; a wrong value in a
sweep fails that point only. In-process (sys.argv patched), so that compose-time cases load no model and a test
can inject a NaN or a full disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

import adamix_runner.pipelines.classification as classification
from adamix_runner.cli import export as export_cli
from adamix_runner.cli import run as cli
from adamix_runner.training import checkpoint
from tests.conftest import FIXTURES

MRPC = ["task=mrpc", f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}", "model=tiny-bert", "train.batch_size=8"]


def _cli(monkeypatch, capsys, main, *arguments: str) -> tuple[int, str, str]:
    """(exit code, stderr, stdout) of `main` with `arguments` on its command line."""
    monkeypatch.setattr(sys, "argv", ["adamix-run", *arguments])
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def _assert_user_error(code: int, err: str, out: str, expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], err


def _cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    return [
        (["peft.adapter_dim=abc"], "peft.adapter_dim=abc: peft.adapter_dim expects an integer, got 'abc'."),
        (["seed=abc"], "seed=abc: seed expects an integer, got 'abc'."),
        (["train.lr=fast"], "train.lr expects a number, got 'fast'."),
        (["train.cpu=maybe"], "train.cpu expects true or false, got 'maybe'."),
        (["peft.adapter_dim=null"], "peft.adapter_dim expects an integer, got 'null'."),
        (["peft.adapter_dim=[8,16]"], "peft.adapter_dim expects an integer, got '[8,16]'."),
        (["task.text_fields=text"], "task.text_fields expects a list like [a,b] of strings, got 'text'."),
        (["task.data_files.train=[a.csv,b.csv]"], "task.data_files.train expects a string or null"),
        (["peft.consistency_weight=high"], "peft.consistency_weight expects a number or null, got 'high'."),
        (
            ["peft.adapter_dim=["],
            "cannot read the override 'peft.adapter_dim=[' (key 'peft.adapter_dim', value '['); ",
        ),
        (["task.data_files.train=[a.csv,b.csv"], "key 'task.data_files.train', value '[a.csv,b.csv'"),
        (["-m", "peft.adapter_dim=abc,xyz"], "peft.adapter_dim=abc: peft.adapter_dim expects an integer"),
        ([f"output_root={a_file}"], f"output_root={a_file} cannot be written"),
        (["output_root=/proc/nope"], "output_root=/proc/nope cannot be written"),
        (["model=tiny-gpt2", "peft=prefix"], "peft=prefix is implemented for BERT/RoBERTa encoders only"),
        (["model=smollm2", "model.path=/no/such", "peft=prefix"], "model=smollm2 is a llama"),
        (["data.max_seq_length=100000"], "data.max_seq_length=100000 is longer than model=minilm can embed (512"),
        (["model=tiny-roberta", "data.max_seq_length=513"], "(512 positions)"),
        (["task=e2e", "model=tiny-bert"], "use a causal LM"),
        (["task.eval_splits=validation"], "task.eval_splits expects a list like [a,b] of strings, got 'validation'."),
        (["logger.kinds=console"], "logger.kinds expects a list like [a,b] of strings, got 'console'."),
        (["train.log_every_steps=0"], "train.log_every_steps must be >= 1, got 0."),
        (["train.eval_every_steps=-1"], "train.eval_every_steps must be >= 0 (0 turns it off), got -1."),
        (["train.checkpoint_every_minutes=-1"], "train.checkpoint_every_minutes must be >= 0"),
        (["task.validation_fraction=2"], "task.validation_fraction must be in (0, 1), got 2.0."),
        (["generation.batch_size=0"], "generation.batch_size must be >= 1, got 0."),
    ]


def test_bad_input_exits_2_with_one_error_line_and_no_traceback(monkeypatch, capsys, tmp_path):
    failures = []
    for arguments, expected in _cases(tmp_path):
        code, err, out = _cli(monkeypatch, capsys, cli.main, f"output_root={tmp_path / 'out'}", *arguments)
        try:
            _assert_user_error(code, err, out, expected)
        except AssertionError as error:
            failures.append(f"{arguments}: exit {code}, {error}")
    assert not failures, "\n".join(failures)


def _nan_loss(*args, **kwargs):
    value, parts = _REAL_LOSS(*args, **kwargs)
    return value * float("nan"), parts


_REAL_LOSS = classification.adamix_loss


def _results(root: Path) -> dict:
    return json.loads(next(root.glob("runs/*/*/*/*/seed0/results.json")).read_text())


def test_a_nan_exits_2_and_leaves_the_completed_result_of_an_earlier_run(monkeypatch, capsys, tmp_path):
    arguments = [*MRPC, "train.max_steps=2", "logger=none", f"output_root={tmp_path}"]
    assert _cli(monkeypatch, capsys, cli.main, *arguments)[0] == 0
    completed = _results(tmp_path)
    assert completed["status"] == "completed"
    monkeypatch.setattr(classification, "adamix_loss", _nan_loss)
    code, err, out = _cli(monkeypatch, capsys, cli.main, *arguments, "overwrite=true")
    _assert_user_error(code, err, out, "non-finite loss at step 1; last good checkpoint: none.")
    assert _results(tmp_path) == completed


def test_a_full_disk_exits_2(monkeypatch, capsys, tmp_path):
    real = checkpoint.shutil.disk_usage
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: real(path)._replace(free=1024))
    code, err, out = _cli(
        monkeypatch,
        capsys,
        cli.main,
        *MRPC,
        "train.max_steps=2",
        "train.checkpoint_every_steps=1",
        f"output_root={tmp_path}",
    )
    _assert_user_error(code, err, out, "not enough free disk space for a checkpoint")
    assert _results(tmp_path)["status"] == "failed"


def test_a_corrupt_checkpoint_exits_2_naming_the_file(monkeypatch, capsys, tmp_path):
    arguments = [*MRPC, "train.max_steps=2", "train.checkpoint_every_steps=1", "train.keep_checkpoint=true"]
    arguments += ["logger=none", f"output_root={tmp_path}"]
    assert _cli(monkeypatch, capsys, cli.main, *arguments)[0] == 0
    folder = next(tmp_path.glob("runs/*/*/*/*/seed0"))
    (folder / "results.json").unlink()
    weights = checkpoint.step_directories(folder / "checkpoint")[-1] / checkpoint.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:64])
    code, err, out = _cli(monkeypatch, capsys, cli.main, *arguments)
    _assert_user_error(code, err, out, f"Checkpoint file {weights} is unreadable")


def test_adamix_export_exits_2_on_a_folder_that_is_no_run_and_on_a_method_it_cannot_export(
    monkeypatch, capsys, tmp_path
):
    code, err, out = _cli(monkeypatch, capsys, lambda: export_cli.main(None), str(tmp_path), "--to", "peft")
    _assert_user_error(code, err, out, f"{tmp_path} is not a run folder (no .hydra/config.yaml)")
    arguments = [*MRPC, "train.max_steps=1", "logger=none", f"output_root={tmp_path}"]
    assert _cli(monkeypatch, capsys, cli.main, *arguments)[0] == 0
    folder = next(tmp_path.glob("runs/*/*/*/*/seed0"))
    code, err, out = _cli(monkeypatch, capsys, lambda: export_cli.main(None), str(folder), "--to", "peft")
    _assert_user_error(code, err, out, "cannot export a peft=adamix run as peft")


def test_a_wrong_value_in_a_sweep_fails_only_its_points(monkeypatch, capsys, tmp_path):
    sweep = ["-m", "model=tiny-bert", "dry_run=true", "peft.adapter_dim=4,abc", "seed=0,1", f"output_root={tmp_path}"]
    code, err, out = _cli(monkeypatch, capsys, cli.main, *sweep)
    assert code == 1, err
    assert "Traceback" not in err + out
    assert "failed: peft.adapter_dim=abc (every point with this value)" in out
    assert "peft.adapter_dim=abc: peft.adapter_dim expects an integer, got 'abc'." in out
    records = sorted(tmp_path.glob("runs/*/*/*/*/seed*/results.json"))
    assert [json.loads(path.read_text())["status"] for path in records] == ["planned", "planned"]
    assert [path.parent.name for path in records] == ["seed0", "seed1"]
