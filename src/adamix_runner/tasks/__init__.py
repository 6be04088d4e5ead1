"""Tasks: one module per family, each returning raw splits and the metric plan as a TaskData."""

from __future__ import annotations

from importlib import import_module

from adamix_runner.errors import UserError
from adamix_runner.tasks.base import TaskData

# imported on use, so that `python -m adamix_runner.tasks.polarity` does not find itself imported already
FAMILIES = ("glue", "polarity", "local", "e2e", "webnlg", "dart")
GENERATION_FAMILIES = ("e2e", "webnlg", "dart")  # one module, tasks/nlg.py

__all__ = ["TaskData", "kind", "load", "num_labels"]


def _family(task_cfg):
    if task_cfg.family not in FAMILIES:
        raise UserError(f"task.family={task_cfg.family!r} is not one of {', '.join(FAMILIES)}")
    module = "nlg" if task_cfg.family in GENERATION_FAMILIES else task_cfg.family
    return import_module(f"{__name__}.{module}")


def kind(task_cfg) -> str:
    """Without reading data: "generation" (a causal LM), "prompt" (a task with task.prompt: template and label
    words read by an LM head) or "classification" (a sequence-classification head)."""
    if task_cfg.family in GENERATION_FAMILIES:
        return "generation"
    prompt = task_cfg.get("prompt")
    return "prompt" if prompt is not None and prompt.get("template") is not None else "classification"


def load(task_cfg, data_cfg, fewshot=None) -> TaskData:
    """The task's splits, checked (columns, labels, non-empty) and cut to data.max_*_samples; a prompt task's
    training split is the few-shot split that `fewshot` (tasks.fewshot.FewShot) selects."""
    family = _family(task_cfg)
    if kind(task_cfg) == "prompt":
        from adamix_runner.tasks import fewshot as fewshot_tasks

        return fewshot_tasks.load(task_cfg, data_cfg, fewshot)
    return family.load(task_cfg, data_cfg)


def num_labels(task_cfg) -> int:
    """The head's size without reading data when task.num_labels is set (dry runs); local may read train."""
    family = _family(task_cfg)
    if kind(task_cfg) == "generation":
        return 0
    if kind(task_cfg) == "prompt":
        return len(task_cfg.prompt.label_words)
    if task_cfg.family == "local":
        return family.num_labels(task_cfg)
    if task_cfg.num_labels is None:
        raise UserError(f"task.num_labels must be set for the {task_cfg.family} task {task_cfg.name}")
    return int(task_cfg.num_labels)
