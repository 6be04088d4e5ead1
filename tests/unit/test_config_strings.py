"""The class of fidelity-audit bug D-A1: a YAML 1.1 boolean, number or null where a string is meant. Every shipped
task=, peft=, model= and experiment= option is composed and every string it holds must read as its YAML file
writes it; every table cell's overrides must give string-typed keys strings; the config check refuses the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.nodes import StringNode

from adamix_runner.config.checks import validate
from adamix_runner.config.compose import CONFIG_DIR, compose_config
from adamix_runner.config.strings import LIST_KEYS, SCALAR_KEYS
from adamix_runner.errors import UserError
from adamix_runner.tables import declaration

GROUPS = ("task", "peft", "model", "experiment")
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))]
PROMPT_WORD_KEYS = {f"task.prompt.{key}" for key in (*SCALAR_KEYS, *LIST_KEYS)}


def _as_written(path: Path) -> dict:
    """The YAML with every scalar as its literal text (BaseLoader: no boolean, number or null resolution)."""
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader) or {}


def _mismatches(written, composed, where: str) -> list[str]:
    """Leaves whose composed value is a string other than the text the YAML writes (an unquoted Yes became
    "True", 1e-3 became "0.001"), and prompt word keys that composed to a non-string."""
    if isinstance(written, dict) and isinstance(composed, dict):
        keys = [k for k in written if k != "defaults" and k in composed]
        return [m for k in keys for m in _mismatches(written[k], composed[k], f"{where}.{k}".lstrip("."))]
    if isinstance(written, list) and isinstance(composed, list) and len(written) == len(composed):
        return [
            m
            for i, (w, c) in enumerate(zip(written, composed, strict=True))
            for m in _mismatches(w, c, f"{where}[{i}]")
        ]
    if isinstance(composed, str) and isinstance(written, str) and composed != written:
        return [f"{where}: the YAML writes {written!r}, the config holds {composed!r}"]
    if where.split("[")[0] in PROMPT_WORD_KEYS and composed is not None and not isinstance(composed, str):
        return [f"{where}: the YAML writes {written!r}, the config holds the non-string {composed!r}"]
    return []


@pytest.mark.parametrize(("group", "name"), OPTIONS, ids=[f"{g}={n}" for g, n in OPTIONS])
def test_every_shipped_option_holds_its_strings_as_written(group, name):
    path = Path(CONFIG_DIR) / group / f"{name}.yaml"
    text = path.read_text()
    cfg = OmegaConf.to_container(compose_config(f"{group}={name}"), resolve=False)
    scope = cfg if "@package _global_" in text else cfg[group]
    prefix = "" if "@package _global_" in text else group
    assert _mismatches(_as_written(path), scope, prefix) == []


def _string_typed(base: DictConfig, key: str) -> bool:
    if key in PROMPT_WORD_KEYS:
        return True
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    return isinstance(node, DictConfig) and isinstance(node._get_node(leaf, throw_on_missing_key=False), StringNode)


def _strings_only(value) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def test_every_table_cell_gives_string_keys_strings():
    """Each cell's overrides as Hydra parses them (Yes stays "Yes", true becomes a boolean): a string-typed key
    never gets a boolean, a number or a null (composing each of the ~550 cells would take minutes here; the values
    a cell gives its keys are exactly these parsed ones)."""
    base = compose_config("task=fewshot_sst2")
    where: dict[str, str] = {}  # each distinct override, parsed once, and a cell that gives it
    for table_id in declaration.table_ids():
        decl = declaration.load(table_id)
        for profile in decl.profiles:
            for cell in declaration.cells(decl, profile):
                for line in cell.overrides:
                    where.setdefault(line, f"{table_id}/{profile}/{cell.name}")
    bad, checked = [], 0
    for override in OverridesParser.create().parse_overrides(sorted(where)):
        key = override.key_or_group
        if "." in key and _string_typed(base, key):
            checked += 1
            if not _strings_only(override.value()):
                bad.append(f"{where[override.input_line]}: {override.input_line}")
    assert bad == []
    assert checked > 10  # the check reached the tables' string keys (output_root, data_dir, ...)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("label_words", [True, False], r"label_words\[0\] is the YAML boolean True.*yes/no/on/off.*\"Yes\", \"No\""),
        ("label_words", ["great", 1], r"label_words\[1\] is the YAML number 1.*quote it"),
        ("list_labels", [0, 1], r"list_labels\[0\] is the YAML number 0"),
        ("template", True, r"task.prompt.template is the YAML boolean True"),
        ("label_words", "great", r"must be a list of strings"),
    ],
)
def test_the_config_check_refuses_a_non_string_where_a_string_is_required(key, value, message):
    cfg = compose_config("task=fewshot_rte")
    OmegaConf.update(cfg, f"task.prompt.{key}", value, force_add=False)
    with pytest.raises(UserError, match=message):
        validate(cfg)


def test_an_unquoted_yes_in_a_task_file_is_refused_by_validate():
    """What fewshot_rte.yaml did before the fix: `label_words: [Yes, No]` reaches validate as booleans."""
    cfg = compose_config("task=fewshot_rte")
    text = (Path(CONFIG_DIR) / "task" / "fewshot_rte.yaml").read_text()
    written = OmegaConf.create(text.replace('["Yes", "No"]', "[Yes, No]"))
    assert list(written.prompt.label_words) == [True, False]  # YAML 1.1, as OmegaConf and Hydra read it
    cfg.task.prompt.label_words = written.prompt.label_words
    with pytest.raises(UserError, match=r"YAML boolean True"):
        validate(cfg)
