"""Check command-line overrides before Hydra composes them, so typos get the choices and the nearest name.

Hydra itself would stop at the same overrides, but with exit code 1, a traceback-like report and no suggestion.
Here an unknown group option lists the options, and an unknown key names the closest existing one.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, get_type_hints

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


def _check_group(config_dir: Path, group: str, value: str) -> None:
    options = group_options(config_dir, group)
    for choice in value.split(","):
        choice = choice.strip()
        if choice in ("null", "") or choice in options:
            continue
        nearest = difflib.get_close_matches(choice, options, n=1)
        hint = f" Did you mean {group}={nearest[0]}?" if nearest else ""
        raise UserError(f"unknown {group} '{choice}'; choose one of: {', '.join(options)}.{hint}")


def check_overrides(arguments: list[str], config_dir: Path) -> None:
    """Raise UserError for the first override that names an unknown group option or key."""
    for argument in arguments:
        if argument.startswith("-") or "=" not in argument:
            continue
        key, value = argument.split("=", 1)
        if key.startswith(("+", "~", "hydra.", "hydra/")) or key.startswith("hydra"):
            continue
        path = key.split(".")
        if len(path) == 1 and path[0] in GROUPS:
            _check_group(config_dir, path[0], value)
        else:
            _check_key(path)
