"""Check command-line overrides before Hydra composes them, so typos get the choices and the nearest name.

Hydra itself would stop at the same overrides, but with exit code 1, a traceback-like report and no suggestion.
Here an unknown group option lists the options, and an unknown key names the closest existing one.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, get_type_hints

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, OverrideType
from hydra.errors import OverrideParseException

from adamix_runner.config import RunConfig
from adamix_runner.errors import UserError

GROUPS = ("task", "model", "peft", "train", "logger", "experiment")
FREE_FORM = ("architecture",)  # dict-valued keys whose sub-keys are the user's (model config kwargs)


def group_options(config_dir: Path, group: str) -> list[str]:
    return sorted(path.stem for path in (config_dir / group).glob("*.yaml"))


def _schema_fields(node: Any) -> dict[str, Any]:
    return get_type_hints(node) if dataclasses.is_dataclass(node) else {}


def _check_key(path: list[str]) -> None:
    """Walk `a.b.c` through the typed schema; unknown steps get the nearest known name."""
    node: Any = RunConfig
    for depth, part in enumerate(path):
        fields = _schema_fields(node)
        if not fields:
            return
        if part not in fields:
            where = ".".join(path[:depth]) or "the top level"
            nearest = difflib.get_close_matches(part, list(fields), n=1)
            hint = f"; did you mean '{'.'.join([*path[:depth], nearest[0]])}'?" if nearest else ""
            raise UserError(f"unknown key '{'.'.join(path)}': {where} has no '{part}'{hint}")
        if part in FREE_FORM:
            return
        node = fields[part]


def _check_group(config_dir: Path, group: str, choices: list[str]) -> None:
    options = group_options(config_dir, group)
    for choice in choices:
        if choice in options:
            continue
        nearest = difflib.get_close_matches(choice, options, n=1)
        hint = f" Did you mean {group}={nearest[0]}?" if nearest else ""
        raise UserError(f"unknown {group} '{choice}'; choose one of: {', '.join(options)}.{hint}")


def _group_choices(override: Override) -> list[str]:
    """The options an override names: one, or each of a sweep (`a,b`, `choice(a,b)`); none for `null` and for
    `glob(...)`, which Hydra matches against the existing options only."""
    if not override.is_sweep_override():
        return [] if override.value() is None else [str(override.value())]
    if isinstance(override.value(), Glob):
        return []
    return list(override.sweep_string_iterator())


def check_overrides(arguments: list[str], config_dir: Path) -> None:
    """Raise UserError for the first override that names an unknown group option or key. Overrides are read by
    Hydra's own parser; a syntax error is left for Hydra to report."""
    candidates = [argument for argument in arguments if not argument.startswith("-") and "=" in argument]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except OverrideParseException:
        return
    for override in overrides:
        key = override.key_or_group
        if override.type != OverrideType.CHANGE or key.startswith("hydra"):
            continue  # `+new.key` adds, `~key` deletes: not the schema's keys
        if key in GROUPS:
            _check_group(config_dir, key, _group_choices(override))
        else:
            _check_key(key.split("."))
