"""Bad input gets a clear message that says what to do instead, before heavy work, with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamix_runner.cli.preflight import check_overrides
from adamix_runner.config.compose import CONFIG_DIR
from adamix_runner.errors import UserError
from adamix_runner.run import run
from tests.conftest import FIXTURES

MRPC_DIR = FIXTURES / "glue" / "mrpc"
CONFIG = Path(CONFIG_DIR)
TINY = ["model=tiny-bert", "train.max_steps=1", "train.batch_size=8"]


def _message(compose_run, *overrides: str) -> str:
    """The UserError that `adamix-run <overrides>` reports."""
    with pytest.raises(UserError) as caught:
        check_overrides(list(overrides), CONFIG)
        run(compose_run(*overrides))
    return str(caught.value)


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    local = ["task=local", "task.text_fields=[text]", "task.label_field=label", *TINY]
    good = _csv(tmp_path, "good.csv", "text,label\nnice film,1\nbad film,0\nfine film,1\nawful film,0\n")
    wide = _csv(tmp_path, "wide.csv", "text,label\nnice film,5\nbad film,0\n")
    empty = _csv(tmp_path, "empty.csv", "text,label\n")
    broken = _csv(tmp_path, "broken.parquet", "this is not parquet")
    zero = _csv(tmp_path, "zero.jsonl", "")
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    mrpc = ["task=mrpc", f"task.data_dir={MRPC_DIR}", *TINY]
    return [
        (["task=mrcp"], "unknown task 'mrcp'; choose one of: cola,"),
        (["task=mrcp"], "Did you mean task=mrpc?"),
        (["model=roberta-larg"], "unknown model 'roberta-larg'; choose one of: bert-base,"),
        (["peft=adamixx"], "unknown peft 'adamixx'; choose one of: adamix, adamix_list, adamix_lora, adapter,"),
        (
            ["logger=wandbb"],
            "unknown logger 'wandbb'; choose one of: console, none, wandb. Did you mean logger=wandb?",
        ),
        (
            ["peft.adapter_dimm=8"],
            "unknown key 'peft.adapter_dimm': peft has no 'adapter_dimm'; did you mean 'peft.adapter_dim'?",
        ),
        (["train.epoch=3"], "did you mean 'train.epochs'?"),
        (["sed=1"], "unknown key 'sed': the top level has no 'sed'; did you mean 'seed'?"),
        (["peft.adapter_dim=0"], "peft.adapter_dim must be > 0, got 0"),
        (["peft.num_experts=0"], "peft.num_experts must be >= 1, got 0"),
        (["peft=adapter", "peft.num_experts=4"], "peft.method 'adapter' has one expert, got num_experts=4"),
        (["peft.share=sideways"], "peft.share must be one of ('up', 'down', 'none'), got 'sideways'"),
        (["peft.inference=fixed", "peft.fixed_expert=7"], "peft.fixed_expert must be in [0, 4), got 7"),
        (["train.lr=0"], "train.lr must be > 0, got 0"),
        (["train.batch_size=0"], "train.batch_size must be > 0, got 0"),
        (["train.select=worst"], "train.select='worst' is not one of last, best."),
        (["train.keep_last_checkpoints=0"], "train.keep_last_checkpoints must be >= 1, got 0."),
        (["data.max_train_samples=0"], "data.max_train_samples must be a positive number or null, got 0."),
        (["eval_only=true"], "eval_only=true needs adapter_path=<run folder>/adapter"),
        (
            [*mrpc, "eval_only=true", f"adapter_path={tmp_path}/nothing"],
            "has no adapter_config.json; pass the adapter/",
        ),
        (local, "the local task needs a training file: pass task.data_files.train=PATH"),
        ([*local, f"task.data_files.train={tmp_path}/missing.csv"], "missing.csv"),
        ([*local, f"task.data_files.train={good}", "task.text_fields=[review]"], "review"),
        ([*local, f"task.data_files.train={wide}", "task.num_labels=2"], "outside 0..1 for num_labels=2"),
        ([*local, f"task.data_files.train={empty}"], "empty"),
        ([*local, f"task.data_files.train={broken}"], "broken.parquet"),
        ([*local, f"task.data_files.train={zero}"], f"train data file {zero} is empty (0 bytes)"),
        ([*local, f"task.data_files.train={folder}"], f"train data file {folder} is a folder, not a file"),
        ([*mrpc, "model=bert-base", f"model.path={good}"], f"model.path={good} is a file; pass the folder"),
        ([*mrpc, "model=bert-base", f"model.path={tmp_path}"], "is a folder without config.json"),
        (["task=mrpc", f"task.data_dir={tmp_path}/no-glue", *TINY], "no-glue"),
        ([*mrpc, "task.primary_metric=validation/bleu"], "task.primary_metric='validation/bleu'"),
        ([*mrpc, "model=bert-base", "model.path=/no/such/model"], "model.path=/no/such/model does not exist"),
        (["task=mrpc", *TINY], "pass task.data_dir=/path/to/glue/mrpc instead"),
        ([*mrpc, "model=roberta-large"], "pass model.path=/path/to/local/model"),
    ]


def test_at_least_25_bad_inputs_each_get_their_message(compose_run, tmp_path):
    cases = _cases(tmp_path)
    assert len(cases) >= 25
    failures = []
    for overrides, expected in cases:
        message = _message(compose_run, *overrides)
        if expected not in message:
            failures.append(f"{overrides}: expected {expected!r} in {message!r}")
    assert not failures, "\n".join(failures)


def test_hydra_sweep_syntax_passes_the_check_and_its_options_are_checked():
    sweeps = ["task=choice(mnli,sst2)", "peft=glob(*)", "peft.adapter_dim=range(8,64,8)", "logger=console,none"]
    check_overrides(["-m", *sweeps, "+model.architecture.dropout=0", "~experiment", "hydra/launcher=slurm"], CONFIG)
    with pytest.raises(UserError, match=r"^unknown task 'sst3'; .* Did you mean task=sst2\?$"):
        check_overrides(["-m", "task=choice(mnli,sst3)"], CONFIG)
    with pytest.raises(UserError, match=r"^unknown model 'tiny-bertt'"):
        check_overrides(["-m", "model=tiny-roberta,tiny-bertt"], CONFIG)


def test_a_tampered_adapter_is_refused_with_the_file_named(compose_run):
    trained = run(compose_run("task=mrpc", f"task.data_dir={MRPC_DIR}", *TINY))
    weights = trained.run_dir / "adapter" / "adaptation.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    message = _message(
        compose_run,
        "task=mrpc",
        f"task.data_dir={MRPC_DIR}",
        *TINY,
        "eval_only=true",
        f"adapter_path={weights.parent}",
    )
    assert f"Cannot load the adapter in {weights.parent}: {weights} is missing, corrupt" in message


MISSING_PACKAGE = "${pkg_path:no_such_pkg,model}"  # a model package that is not installed


def _cli(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", "adamix_runner", *arguments], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["peft=adamixx"], "error: unknown peft 'adamixx'"),
        (["peft.share=sideways"], "error: peft.share must be one of"),
        (["task=mrpc", "model=tiny-bert"], "pass task.data_dir=/path/to/glue/mrpc instead"),
        ([f"model.path={MISSING_PACKAGE}", "dry_run=true"], "error: Package 'no_such_pkg' is not installed"),
    ],
)
def test_cli_exits_2_without_a_traceback(tmp_path, arguments, expected):
    done = _cli(*arguments, f"output_root={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_config_that_cannot_resolve_fails_each_sweep_point_and_the_sweep_goes_on(tmp_path):
    sweep = ["-m", f"model.path={MISSING_PACKAGE}", "dry_run=true", "seed=0,1", f"output_root={tmp_path}"]
    done = _cli(*sweep, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.count("UserError: Package 'no_such_pkg' is not installed") == 2
    assert "2 sweep point(s) failed" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout
