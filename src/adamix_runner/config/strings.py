"""The prompt's word-like keys must be strings as written: YAML 1.1 turns unquoted Yes/No/On/Off/True/False into
booleans, 1e-3 into a number and null/~ into nothing, and a `str` schema would silently make "True" of an unquoted
Yes (fidelity audit D-A1: MNLI and RTE prompted with " True"/" False"). The schema types these keys Any
(config.py PromptConfig), so the YAML's own type reaches this check, which runs in `validate` before any work."""

from __future__ import annotations

from omegaconf import ListConfig

from adamix_runner.errors import UserError

SCALAR_KEYS = ("template", "list_folder")
LIST_KEYS = ("label_words", "label_names", "list_labels")
YAML_KIND = {bool: "boolean", int: "number", float: "number", type(None): "null"}
WHY = {
    "boolean": "YAML 1.1 reads unquoted yes/no/on/off/true/false as booleans",
    "number": "YAML reads an unquoted number as a number",
    "null": "YAML reads an unquoted null or ~ as no value",
}


def _refuse(key: str, value: object, example: str) -> UserError:
    kind = YAML_KIND.get(type(value), type(value).__name__)
    return UserError(
        f"task.prompt.{key} is the YAML {kind} {value!r}, not a string ({WHY.get(kind, 'a string is required')}): "
        f"quote it, e.g. {example} in the YAML file, or 'task.prompt.{key.split('[')[0]}=...' with the value in "
        "double quotes on the command line."
    )


def check_prompt_strings(prompt) -> None:
    """Every scalar key is a string or unset, every list key a list of strings or unset."""
    for key in SCALAR_KEYS:
        value = prompt[key]
        if value is not None and not isinstance(value, str):
            raise _refuse(key, value, f'{key}: "{value}"')
    for key in LIST_KEYS:
        value = prompt[key]
        if value is None:
            continue
        if not isinstance(value, ListConfig | list):
            raise UserError(f'task.prompt.{key} must be a list of strings, e.g. {key}: ["a", "b"]; got {value!r}')
        for i, item in enumerate(value):
            if not isinstance(item, str):
                words = ", ".join('"Yes"' if w is True else '"No"' if w is False else f'"{w}"' for w in value)
                raise _refuse(f"{key}[{i}]", item, f"{key}: [{words}]")
