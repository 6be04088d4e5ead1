"""Check command-line overrides before Hydra composes them, so typos get the choices and the nearest name.

Hydra itself would stop at the same overrides, but with exit code 1, a traceback-like report and no suggestion.
Here an unknown group option lists the options, an unknown key names the closest existing one, a value of the
wrong type (`peft.adapter_dim=abc`, a list where one value is expected) names the key, the value and the type,
and broken syntax names the argument. A wrong value inside a sweep is returned instead of raised: the sweep drops
it and reports those points as failed (cli/run.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep, Override, OverrideType
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

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


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _describe(hint: Any) -> str:
    """A schema type in words, for messages: `int | None` -> 'an integer or null'."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args if arg is not type(None)) + " or null"
    if origin is list:
        return f"a list like [a,b] of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping like {key: value}"
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _schema_slot(path: list[str]) -> tuple[Any, list[str], Any] | None:
    """(the deepest schema dataclass on `path`, the rest of the path inside it, the type found there)."""
    node: Any = RunConfig
    for depth, part in enumerate(path):
        hint = _schema_fields(node).get(part)
        if hint is None:
            return None
        if not dataclasses.is_dataclass(hint):
            rest = path[depth:]
            if len(rest) > 1:  # a key inside a dict field: the dict's value type
                hint = get_args(hint)[1] if get_args(hint) else Any
            return node, rest, hint
        node = hint
    return None


def _type_error(key: str, value: Any) -> str | None:
    """Why `key=value` cannot enter the schema (OmegaConf's own check on a copy of the owning dataclass), or None."""
    slot = _schema_slot(key.split("."))
    if slot is None or slot[1][0] in FREE_FORM:
        return None
    owner, rest, hint = slot
    try:
        OmegaConf.update(OmegaConf.structured(owner), ".".join(rest), value, merge=False)
    except OmegaConfBaseException:
        shown = Override._get_value_element_as_str(value)
        return f"{key}={shown}: {key} expects {_describe(hint)}, got {shown!r}."
    return None


@dataclass
class RejectedValue:
    """A value of a sweep that cannot enter the schema: every point of the sweep that has it fails."""

    argument: str  # the sweep override as typed
    kept: str  # the same override without its wrong values
    value: str
    message: str


def _values(override: Override) -> list[Any]:
    if not override.is_sweep_override():
        return [override.value()]
    if isinstance(override.value(), Glob | IntervalSweep):
        return []
    return list(override.sweep_iterator())


def _parse(candidates: list[str]) -> list[Override]:
    """Hydra's parser; a syntax error names the argument and what the key expects."""
    parser = OverridesParser.create()
    try:
        return parser.parse_overrides(candidates)
    except OverrideParseException:
        pass
    for argument in candidates:
        try:
            parser.parse_overrides([argument])
        except OverrideParseException as error:
            key, _, value = argument.partition("=")
            slot = _schema_slot(key.lstrip("+~").split("."))
            expects = f"; {key} expects {_describe(slot[2])}" if slot else ""
            reason = str(error).splitlines()[0].strip()
            raise UserError(
                f"cannot read the override {argument!r} (key {key!r}, value {value!r}){expects}. "
                f"Hydra says: {reason}. Quote values with special characters: {key}='\"...\"'."
            ) from None
    return []


def check_writable(folder: Path, key: str = "output_root") -> None:
    """Hydra creates the output folder before any of our code runs: a folder that cannot be written (read-only,
    a file, /proc) would end in its traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(
            f"{key}={folder} cannot be written ({error.strerror or error}); pass {key}=<a writable folder>."
        ) from None


def output_root(arguments: list[str], default: str) -> Path | None:
    """The output_root the command line sets (the last one wins), else the config's; None for a sweep over it."""
    chosen = default
    for override in _parse([a for a in arguments if a.startswith("output_root=")]):
        if override.is_sweep_override():
            return None
        chosen = str(override.value())
    return Path(chosen)


def check_overrides(arguments: list[str], config_dir: Path) -> list[RejectedValue]:
    """Raise UserError for the first override that cannot be read, names an unknown group option or key, or holds a
    value of the wrong type. Returns the wrong values found inside sweeps (`peft.adapter_dim=8,abc`), which fail
    only their own points."""
    candidates = [argument for argument in arguments if not argument.startswith("-") and "=" in argument]
    rejected: list[RejectedValue] = []
    for override in _parse(candidates):
        key = override.key_or_group
        if override.type != OverrideType.CHANGE or key.startswith("hydra"):
            continue  # `+new.key` adds, `~key` deletes: not the schema's keys
        if key in GROUPS:
            _check_group(config_dir, key, _group_choices(override))
            continue
        _check_key(key.split("."))
        values = _values(override)
        errors = [(value, _type_error(key, value)) for value in values]
        bad = [(value, message) for value, message in errors if message]
        if bad and (not override.is_sweep_override() or len(bad) == len(values)):
            raise UserError(bad[0][1])
        kept = ",".join(Override._get_value_element_as_str(value) for value, message in errors if not message)
        for value, message in bad:
            shown = Override._get_value_element_as_str(value)
            rejected.append(RejectedValue(override.input_line, f"{key}={kept}", shown, message))
    return rejected
